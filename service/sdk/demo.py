"""The live demo: every frame of /demo/ is a "tab" sharing one socket, with the server's own
connection count beside them.

Whoever opens the demo holds nothing but an app's public key, yet the demo reads the app's
connection counts, publishes into its channels and signs with its secret. So it only serves
apps whose team switched the demo on in the dashboard (``App.demo_enabled``), the operator's
own apps, and a logged-in member of the app's own team; for anyone else every demo URL answers
404, as for an unknown key.
Even then it is narrow: short texts, only the demo's own channels (DEMO_CHANNEL and its
private-/presence- twins), with rate limits.
"""

import functools
import json
import secrets
from datetime import UTC, datetime

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST, require_safe

from service.api.engine import on_node
from service.api.errors import BackendUnavailable
from service.realtime import signatures
from service.realtime.ratelimit import TokenBucket
from service.realtime.tenancy import get_app_sync

from .assets import DEMO_DIR, file_response, sdk_version
from .views import KEY

NOT_SERVED = ("No demo for this key: the key is unknown, or the app's team has not switched its "
              "public demo on (Dashboard → the app → Settings → Public demo page).")

DEMO_CHANNEL = "tabcast-demo"
PUBLISH_CHANNELS = frozenset({DEMO_CHANNEL, f"private-{DEMO_CHANNEL}", f"presence-{DEMO_CHANNEL}"})
SIGNABLE_CHANNELS = frozenset({f"private-{DEMO_CHANNEL}", f"presence-{DEMO_CHANNEL}"})
MAX_TEXT = 200
TRANSPORTS = ("auto", "shared-worker", "leader", "direct")
USER_COOKIE = "tabcast_demo_user"
DEMO_SCRIPTS = frozenset({"demo.js", "demo_tab.js", "demo.css"})

publish_limit = TokenBucket(rate=5, burst=10, max_keys=10_000)  # per app and per client address
auth_limit = TokenBucket(rate=20, burst=40, max_keys=10_000)


def _client(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


class NoDemo(Exception):
    """The key names no app the demo may act for."""


def demo_app(request):
    """The app named by ?key= if the demo may act for it (see the module docstring), else NoDemo."""
    key = request.GET.get("key", "")
    app = get_app_sync(key=key) if KEY.fullmatch(key) else None
    if app is None or not app.enabled or not (app.extra.get("demo") or _on_the_apps_team(request, app)):
        raise NoDemo
    return app


def _on_the_apps_team(request, app) -> bool:
    """A logged-in member of the app's own team may always try the demo with it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or app.tenant_id is None:
        return False
    try:
        return user.membership.tenant_id == app.tenant_id
    except ObjectDoesNotExist:  # a user in no team (e.g. made by createsuperuser)
        return False


def _no_demo_page(request):
    return render(request, "sdk/demo_unavailable.html", {"message": NOT_SERVED}, status=404)


def _no_demo_json(request):
    return JsonResponse({"error": NOT_SERVED}, status=404)


def serves_demo(refused):
    """Run the view with the demo's app as its second argument, or answer ``refused`` (a 404)."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                app = demo_app(request)
            except NoDemo:
                return refused(request)
            return view(request, app, *args, **kwargs)
        return wrapper
    return decorate


@require_safe
@ensure_csrf_cookie
@serves_demo(_no_demo_page)
def demo_page(request, app):
    return render(request, "sdk/demo.html", {"key": app.key, "app_name": app.name, "version": sdk_version()})


@require_safe
@xframe_options_sameorigin  # shown in the demo page's frames
@ensure_csrf_cookie
@serves_demo(_no_demo_page)
def demo_tab(request, app):
    """One "tab" of the demo (shown in an iframe of the demo page)."""
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
@serves_demo(_no_demo_json)
def demo_stats(request, app):
    """Only counts: physical sockets and the logical tabs they carry, for the key's app."""
    try:
        sockets, tabs = on_node(lambda node: node.state.connection_counts(app.id))
    except BackendUnavailable:
        return JsonResponse({"error": "The realtime backend is unavailable"}, status=503)
    response = JsonResponse({"connections": sockets, "tabs": tabs})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@serves_demo(_no_demo_json)
def demo_publish(request, app):
    """Publish a short text to a demo channel (CSRF-protected, rate limited)."""
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
@serves_demo(_no_demo_json)
def demo_auth(request, app):
    """The demo's own auth endpoint: signs the demo's private/presence channels only."""
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
