"""The browser SDK at versioned URLs: /sdk/v1/tabcast.js, the SharedWorker script and the
hidden iframe ("frame") that hosts the worker for pages on other origins."""

import re

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe

from service.realtime.tenancy import get_app_sync

from .assets import DIST_DIR, SDK_FILES, file_response, sdk_version
KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")


@require_safe
def sdk_file(request, name: str) -> HttpResponse:
    if name not in SDK_FILES:
        raise Http404("No such SDK file")
    return file_response(request, DIST_DIR / name)


def app_from_key(request):
    """The app named by ?key=, or 404 (the key is public; it identifies, it does not authorize)."""
    key = request.GET.get("key", "")
    app = get_app_sync(key=key) if KEY.fullmatch(key) else None
    if app is None or not app.enabled:
        raise Http404("Unknown app key")
    return app


@require_safe
@xframe_options_exempt  # this page exists to be framed, by the sites the app allows
def frame(request) -> HttpResponse:
    app = app_from_key(request)
    # The SDK names the embedding page's origin (?origin=). One the app does not allow gets a
    # frame that only answers "origin_not_allowed" (no worker; framable anywhere, it holds
    # nothing), so the SDK can report it instead of a frame-ancestors block it cannot see.
    # A page that lies about its origin gains nothing: the real frame stays CSP-restricted.
    page_origin = request.GET.get("origin", "")[:300]
    refused = "origin_not_allowed" if page_origin and not app.origin_allowed(page_origin) else ""
    response = render(request, "sdk/frame.html", {"version": sdk_version(), "refused": refused})
    ancestors = " ".join(app.allowed_origins) if app.allowed_origins and not refused else "*"
    response["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; worker-src 'self'; "
        f"frame-ancestors {ancestors}"
    )
    response["Cache-Control"] = "private, max-age=60"
    response["Referrer-Policy"] = "no-referrer"
    return response
