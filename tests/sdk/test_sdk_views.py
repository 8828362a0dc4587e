"""The SDK's HTTP surface: versioned files, the worker frame, and the demo's narrow endpoints."""

import json
import re
from pathlib import Path

import pytest
import requests

from service.realtime import signatures
from tests.support.processes import TabcastProcess

VERSION = json.loads((Path(__file__).resolve().parents[2] / "sdk_js" / "package.json").read_text())["version"]


@pytest.fixture(scope="module")
def server():
    process = TabcastProcess().start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def app(server):
    return server.create_app("views", client_events=True, demo=True)


def demo_session(server, app) -> tuple[requests.Session, str]:
    """A browser-like session that loaded the demo page (and so holds a CSRF cookie)."""
    session = requests.Session()
    page = session.get(f"{server.http}/demo/?key={app['key']}", timeout=5)
    assert page.status_code == 200
    return session, session.cookies["csrftoken"]


@pytest.mark.parametrize("name", ["tabcast.js", "worker.js", "frame.js", "tabcast.mjs"])
def test_sdk_files_are_javascript_cached_briefly_unless_versioned(server, name):
    plain = requests.get(f"{server.http}/sdk/v1/{name}", timeout=5)
    assert plain.status_code == 200
    assert plain.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert plain.headers["Cache-Control"] == "public, max-age=300"
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    versioned = requests.get(f"{server.http}/sdk/v1/{name}?v={VERSION}", timeout=5)
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert versioned.content == plain.content
    again = requests.get(f"{server.http}/sdk/v1/{name}", headers={"If-None-Match": plain.headers["ETag"]}, timeout=5)
    assert again.status_code == 304


def test_the_built_sdk_carries_its_version_and_no_secret(server, app):
    body = requests.get(f"{server.http}/sdk/v1/tabcast.js", timeout=5).text
    assert f'"{VERSION}"' in body
    assert app["secret"] not in body


def test_unknown_sdk_files_are_404(server):
    assert requests.get(f"{server.http}/sdk/v1/settings.py", timeout=5).status_code == 404
    assert requests.get(f"{server.http}/sdk/v1/..%2Fpackage.json", timeout=5).status_code == 404


def test_frame_may_be_framed_by_the_apps_allowed_origins_only(server):
    app = server.create_app("framed", demo=True)
    open_frame = requests.get(f"{server.http}/sdk/v1/frame.html?key={app['key']}", timeout=5)
    assert open_frame.status_code == 200
    assert "X-Frame-Options" not in open_frame.headers
    assert "frame-ancestors *" in open_frame.headers["Content-Security-Policy"]
    assert f"/sdk/v1/frame.js?v={VERSION}" in open_frame.text

    server.update_app(app["app_id"], allowed_origins="https://shop.example.com")
    limited = requests.get(f"{server.http}/sdk/v1/frame.html?key={app['key']}", timeout=5)
    assert "frame-ancestors https://shop.example.com" in limited.headers["Content-Security-Policy"]
    assert requests.get(f"{server.http}/sdk/v1/frame.html?key=nope", timeout=5).status_code == 404


def test_stats_expose_only_counts(server, app):
    response = requests.get(f"{server.http}/demo/stats?key={app['key']}", timeout=5)
    assert response.json() == {"connections": 0, "tabs": 0}
    assert response.headers["Cache-Control"] == "no-store"
    assert requests.get(f"{server.http}/demo/stats?key=unknown", timeout=5).status_code == 404


def test_publish_needs_the_csrf_token(server, app):
    response = requests.post(f"{server.http}/demo/publish?key={app['key']}", data={"text": "hi"}, timeout=5)
    assert response.status_code == 403


def test_publish_only_short_texts_to_demo_channels(server, app):
    session, token = demo_session(server, app)
    url = f"{server.http}/demo/publish?key={app['key']}"
    headers = {"X-CSRFToken": token}
    assert session.post(url, data={"text": "hello"}, headers=headers, timeout=5).json() == {
        "ok": True, "channel": "tabcast-demo"}
    assert session.post(url, data={"text": "x" * 201}, headers=headers, timeout=5).status_code == 400
    assert session.post(url, data={"text": "hi", "channel": "orders"}, headers=headers, timeout=5).status_code == 400


def test_publish_is_rate_limited(server):
    app = server.create_app("limited", demo=True)
    session, token = demo_session(server, app)
    url = f"{server.http}/demo/publish?key={app['key']}"
    statuses = [session.post(url, data={"text": f"m{i}"}, headers={"X-CSRFToken": token}, timeout=5).status_code
                for i in range(15)]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses


def test_demo_auth_signs_only_the_demo_channels(server, app):
    session, token = demo_session(server, app)
    url = f"{server.http}/demo/auth?key={app['key']}"
    headers = {"X-CSRFToken": token}
    refused = session.post(url, data={"socket_id": "1.2", "channel_name": "private-orders"}, headers=headers, timeout=5)
    assert refused.status_code == 403

    session.get(f"{server.http}/demo/tab?key={app['key']}", timeout=5)  # sets the browser's demo user
    signed = session.post(url, data={"socket_id": "1.2", "channel_name": "presence-tabcast-demo"},
                          headers=headers, timeout=5).json()
    assert re.fullmatch(r'\{"user_id": "[0-9a-f]{8}", "user_info": \{"name": "Browser [0-9a-f]{4}"\}\}',
                        signed["channel_data"])
    message = signatures.channel_auth_message("1.2", "presence-tabcast-demo", signed["channel_data"])
    assert signed["auth"] == f"{app['key']}:{signatures.sign(app['secret'], message)}"


def test_demo_assets_have_their_content_types(server):
    css = requests.get(f"{server.http}/demo/demo.css", timeout=5)
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"  # nosniff: a wrong type is ignored
    script = requests.get(f"{server.http}/demo/demo_tab.js", timeout=5)
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert requests.get(f"{server.http}/demo/views.py", timeout=5).status_code == 404
