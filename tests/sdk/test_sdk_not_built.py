"""`manage.py serve` without a built SDK says so at start, and /sdk/v1/*.js answers 503 with how to
build it, instead of a script URL that silently fails (issue 13, Operators)."""

import urllib.error
import urllib.request

import pytest

from tests.support.processes import TabcastProcess

HINT = "cd sdk_js && npm ci && npm run build"


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory):
    dist = tmp_path_factory.mktemp("empty-sdk-dist")  # TABCAST_SDK_DIST_DIR: exists, holds no build
    server = TabcastProcess(extra_env={"TABCAST_SDK_DIST_DIR": str(dist)}).start()
    yield server, dist
    server.stop()


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def test_serve_says_at_start_that_the_sdk_is_missing_and_how_to_build_it(unbuilt):
    server, dist = unbuilt
    log = server.log()
    assert "The browser SDK is not built" in log, log
    assert "/sdk/v1/tabcast.js" in log and "/sdk/v1/worker.js" in log and str(dist) in log
    assert HINT in log


@pytest.mark.parametrize("name", ["tabcast.js", "tabcast.mjs", "worker.js", "frame.js"])
def test_the_sdk_urls_answer_503_with_the_same_hint(unbuilt, name):
    server, _ = unbuilt
    status, headers, body = _get(f"{server.http}/sdk/v1/{name}")
    assert status == 503, body
    assert HINT in body and name in body
    assert headers["Cache-Control"] == "no-store"  # no proxy or browser keeps the error once it is built


def test_a_built_sdk_starts_without_the_warning_and_serves_the_script(tabcast):
    assert "The browser SDK is not built" not in tabcast.log()
    status, headers, body = _get(f"{tabcast.http}/sdk/v1/tabcast.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and len(body) > 1000
