"""Built SDK files (sdk_js/dist) and the demo's scripts, served with content types and caching.

A URL carrying ``?v=<current SDK version>`` names one build forever, so it is cached as
immutable; unversioned URLs (the customer's ``<script src=".../sdk/v1/tabcast.js">``) are
cached briefly and revalidated by ETag, so a release reaches browsers within minutes.
"""

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified

SDK_DIR = Path(settings.BASE_DIR) / "sdk_js"
# TABCAST_SDK_DIST_DIR (settings.TABCAST["SDK_DIST_DIR"]) may point elsewhere, e.g. a packaged build.
DIST_DIR = Path(settings.TABCAST.get("SDK_DIST_DIR") or SDK_DIR / "dist")
# The files /sdk/v1/<name> serves: all come out of `npm run build` in sdk_js/.
SDK_FILES = frozenset({
    "tabcast.js", "tabcast.js.map", "tabcast.mjs", "tabcast.mjs.map",
    "worker.js", "worker.js.map", "frame.js", "frame.js.map",
})
BUILD_HINT = "build it with `cd sdk_js && npm ci && npm run build` (bin/start does)"


def missing_sdk_files() -> list[str]:
    """The SDK scripts (not source maps) missing from DIST_DIR, e.g. on a fresh clone without npm."""
    return sorted(name for name in SDK_FILES if not name.endswith(".map") and not (DIST_DIR / name).is_file())


def missing_sdk_message() -> str:
    missing = missing_sdk_files()
    if not missing:
        return ""
    return (f"The browser SDK is not built: /sdk/v1/{', /sdk/v1/'.join(missing)} will answer 503 "
            f"(no {DIST_DIR}/{missing[0]}); {BUILD_HINT}.")
DEMO_DIR = Path(__file__).resolve().parent / "static" / "sdk"

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"


@lru_cache(maxsize=1)
def sdk_version() -> str:
    """The version in sdk_js/package.json: baked into the build and into versioned URLs."""
    return json.loads((SDK_DIR / "package.json").read_text())["version"]


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def file_response(request, path: Path) -> HttpResponse:
    """A static file with ETag revalidation; 404 if it does not exist."""
    try:
        body, etag = _load(path, path.stat().st_mtime_ns)
    except FileNotFoundError:
        if path.parent == DIST_DIR:
            return HttpResponse(f"The Tabcast SDK is not built on this server (no {path.name} in {DIST_DIR}): "
                                f"{BUILD_HINT}.\n", status=503, content_type="text/plain; charset=utf-8",
                                headers={"Cache-Control": "no-store", "Retry-After": "60"})
        return HttpResponse("Not found", status=404, content_type="text/plain; charset=utf-8")
    versioned = request.GET.get("v") == sdk_version()
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE if versioned else SHORT
    response["X-Content-Type-Options"] = "nosniff"
    # Public files, loaded by customers' pages on other origins (and by module/COEP pages).
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
