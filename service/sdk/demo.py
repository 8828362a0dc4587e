"""The live demo: every frame of /demo/ is a "tab" sharing one socket, with the server's own
connection count beside them.

Anyone who knows an app key can open the demo, so what it can do is narrow: read the
app's connection counts, publish short texts and sign subscriptions only on the demo's own
channels (DEMO_CHANNEL and its private-/presence- twins), with rate limits.
"""

import json
import secrets
from datetime import UTC, datetime

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST, require_safe

from service.api.engine import on_node
from service.api.errors import BackendUnavailable
from service.realtime import signatures

from .assets import DEMO_DIR, file_response, sdk_version
from .ratelimit import TokenBucket
from .views import app_from_key

DEMO_CHANNEL = "tabcast-demo"
PUBLISH_CHANNELS = frozenset({DEMO_CHANNEL, f"private-{DEMO_CHANNEL}", f"presence-{DEMO_CHANNEL}"})
SIGNABLE_CHANNELS = frozenset({f"private-{DEMO_CHANNEL}", f"presence-{DEMO_CHANNEL}"})
MAX_TEXT = 200
TRANSPORTS = ("auto", "shared-worker", "leader", "direct")
USER_COOKIE = "tabcast_demo_user"
DEMO_SCRIPTS = frozenset({"demo.js", "demo_tab.js", "demo.css"})

publish_limit = TokenBucket(rate=5, burst=10)  # per app and per client address
auth_limit = TokenBucket(rate=20, burst=40)


def _client(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


@require_safe
@ensure_csrf_cookie
def demo_page(request):
    app = app_from_key(request)
    return render(request, "sdk/demo.html", {"key": app.key, "app_name": app.name, "version": sdk_version()})


@require_safe
@xframe_options_sameorigin  # shown in the demo page's frames
@ensure_csrf_cookie
def demo_tab(request):
    """One "tab" of the demo (shown in an iframe of the demo page)."""
    app = app_from_key(request)
    transport = request.GET.get("transport", "auto")
    if transport not in TRANSPORTS:
        transport = "auto"
    response = render(request, "sdk/demo_tab.html", {
        "key": app.key, "transport": transport, "channel": DEMO_CHANNEL, "version": sdk_version()})
    if USER_COOKIE not in request.COOKIES:
        # One presence member per browser, however many tabs it has open.
        response.set_cookie(USER_COOKIE, secrets.token_hex(4), samesite="Lax", httponly=True)
    return response


@require_safe
def demo_script(request, name: str):
    if name not in DEMO_SCRIPTS:
        return HttpResponse("Not found", status=404)
    return file_response(request, DEMO_DIR / name)


@require_safe
def demo_stats(request):
    """Only counts: physical sockets and the logical tabs they carry, for the key's app."""
    app = app_from_key(request)
    try:
        sockets, tabs = on_node(lambda node: node.state.connection_counts(app.id))
    except BackendUnavailable:
        return JsonResponse({"error": "The realtime backend is unavailable"}, status=503)
    response = JsonResponse({"connections": sockets, "tabs": tabs})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def demo_publish(request):
    """Publish a short text to a demo channel (CSRF-protected, rate limited)."""
    app = app_from_key(request)
    text = request.POST.get("text", "").strip()
    channel = request.POST.get("channel", DEMO_CHANNEL)
    if not text or len(text) > MAX_TEXT:
        return JsonResponse({"error": f"text must be 1-{MAX_TEXT} characters"}, status=400)
    if channel not in PUBLISH_CHANNELS:
        return JsonResponse({"error": f"the demo only publishes to {sorted(PUBLISH_CHANNELS)}"}, status=400)
    if not (publish_limit.allow(("app", app.id)) and publish_limit.allow(("ip", _client(request)))):
        return JsonResponse({"error": "Too many messages; slow down"}, status=429, headers={"Retry-After": "1"})
    data = json.dumps({"text": text, "at": datetime.now(UTC).isoformat(timespec="milliseconds")})
    try:
        on_node(lambda node: node.publish(app, [channel], "message", data))
    except BackendUnavailable:
        return JsonResponse({"error": "The realtime backend is unavailable"}, status=503)
    return JsonResponse({"ok": True, "channel": channel})


@require_POST
def demo_auth(request):
    """The demo's own auth endpoint: signs the demo's private/presence channels only."""
    app = app_from_key(request)
    socket_id = request.POST.get("socket_id", "")
    channel = request.POST.get("channel_name", "")
    if channel not in SIGNABLE_CHANNELS or not _valid_socket_id(socket_id):
        return JsonResponse({"error": "The demo only signs its own channels"}, status=403)
    if not auth_limit.allow(("ip", _client(request))):
        return JsonResponse({"error": "Too many requests"}, status=429, headers={"Retry-After": "1"})
    result = {}
    channel_data = None
    if channel.startswith("presence-"):
        user = request.COOKIES.get(USER_COOKIE) or secrets.token_hex(4)
        channel_data = json.dumps({"user_id": user, "user_info": {"name": f"Browser {user[:4]}"}})
        result["channel_data"] = channel_data
    message = signatures.channel_auth_message(socket_id, channel, channel_data)
    result["auth"] = f"{app.key}:{signatures.sign(app.secret, message)}"
    return JsonResponse(result)


def _valid_socket_id(socket_id: str) -> bool:
    left, dot, right = socket_id.partition(".")
    return bool(dot) and left.isdigit() and right.isdigit() and len(socket_id) <= 40
