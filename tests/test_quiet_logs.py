"""No warning floods (issue 13, Operators): the schema builds without drf-spectacular warnings,
and static files (the dashboard's and debug console's scripts) stream through an async iterator,
so ASGI does not warn "StreamingHttpResponse must consume synchronous iterators" per file."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASGI_WARNING = "StreamingHttpResponse must consume synchronous iterators"


def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.json"
    result = subprocess.run([sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
                             "--format", "openapi-json", "--file", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr and "Error" not in result.stderr, result.stderr[-3000:]
    schema = json.loads(out.read_text())
    operation_ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()
                     if isinstance(op, dict) and "operationId" in op]
    assert operation_ids and len(operation_ids) == len(set(operation_ids))
    assert {"pusherSignature", "keySecret"} <= set(schema["components"]["securitySchemes"])


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers, response.read()


def test_static_files_stream_whole_and_without_the_asgi_warning(tabcast):
    files = ["live/console.js", "billing/charts.js", "tabcast/tabcast.css", "tabcast/favicon.svg"]
    for name in files:
        source = next(p for p in (ROOT / app / "static" / name for app in ("live", "billing", "service")) if p.exists())
        status, headers, body = _get(f"{tabcast.http}/static/{name}")
        assert status == 200 and body == source.read_bytes(), name
        assert int(headers["Content-Length"]) == len(body) and headers.get("Last-Modified")
    # The schema page too must not log drf-spectacular warnings while serving.
    status, _, body = _get(f"{tabcast.http}/api/schema")
    assert status == 200 and b"openapi" in body
    # A last request that the server logs (404s are logged by django.request): everything above was
    # handled before it, so any warning printed for the files is in the log by now.
    try:
        urllib.request.urlopen(f"{tabcast.http}/static/h13-marker-does-not-exist.js", timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 404
    log = tabcast.log()
    assert ASGI_WARNING not in log, log
    assert "drf_spectacular" not in log and "could not resolve" not in log, log
