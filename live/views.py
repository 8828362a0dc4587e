"""The debug console of one app, and the channel auth of the dashboard's live pages."""

import re

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from service.api.engine import on_node
from service.api.errors import BackendUnavailable
from service.realtime import quotas as realtime_quotas
from service.realtime import metrics as realtime_metrics
from service.realtime import signatures
from service.realtime.tenancy import get_app_sync
from tenants.access import tenant_app
from tenants.services import apps_of, tenant_of

from .dashboard_app import dashboard_app, debug_channel, metrics_channel, watched_app_id
from .debug_stream import INTERVAL, MAX_EVENTS
from .forms import ChannelHistoryForm, TestEventForm

SOCKET_ID = re.compile(r"[0-9]{1,10}\.[0-9]{1,10}")


def realtime_context(request, app) -> dict:
    """What the page's Tabcast client needs: the dashboard app's key and this server's host."""
    return {"app": app, "dashboard_key": dashboard_app().key, "realtime_host": request.get_host(),
            "metrics_channel": metrics_channel(app.id), "debug_channel": debug_channel(app.id)}


@tenant_app
def console(request, app):
    return _render_console(request, app, TestEventForm(max_bytes=app.max_message_bytes))


def _render_console(request, app, form, status: int = 200, history_form=None, history=None):
    info = get_app_sync(app_id=app.id)  # the history the app keeps now: its settings within its plan
    return render(request, "live/console.html", {
        **realtime_context(request, app), "form": form, "max_per_second": int(MAX_EVENTS / INTERVAL),
        "history_form": history_form or ChannelHistoryForm(), "history": history,
        "history_size": info.history_size, "history_ttl": info.history_ttl}, status=status)


@tenant_app
def channel_history(request, app):
    """The last messages kept for one channel of the app, with their positions (docs/recovery.md).

    JSON for the console's script; without it, the console page with the history filled in."""
    form = ChannelHistoryForm(request.GET)
    wants_json = request.accepts("application/json") and not request.accepts("text/html")
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        return _render_console(request, app, TestEventForm(max_bytes=app.max_message_bytes), status=400,
                               history_form=form)
    channel = form.cleaned_data["channel"]
    info = get_app_sync(app_id=app.id)
    try:
        history = on_node(lambda node: node.history(info, channel, None, ChannelHistoryForm.LIMIT))
    except BackendUnavailable:
        if wants_json:
            return JsonResponse({"error": "The realtime backend is unavailable; try again"}, status=503)
        messages.error(request, "The realtime backend is unavailable; try again.")
        return redirect("live:console", app_id=app.id)
    history.setdefault("position", None)  # history off: no stream, no position
    if wants_json:
        return JsonResponse(history)
    return _render_console(request, app, TestEventForm(max_bytes=app.max_message_bytes), history_form=form,
                           history=history)


@require_POST
@tenant_app
def publish_test_event(request, app):
    """Publish the console's test event to the app, as its server would."""
    form = TestEventForm(request.POST, max_bytes=app.max_message_bytes)
    wants_json = request.accepts("application/json") and not request.accepts("text/html")
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        return _render_console(request, app, form, status=400)
    info = get_app_sync(app_id=app.id)
    channel, event, data = (form.cleaned_data[k] for k in ("channel", "event", "data"))
    # The console's events count like any publish (and wait out the app's deliveries/s flag).
    over = realtime_quotas.message_refusal(info) or realtime_quotas.delivery_refusal(info)
    if over is not None:
        realtime_metrics.limit_rejected(over.quota)
        if wants_json:
            return JsonResponse({"error": over.message, "code": 429}, status=429,
                                headers={"Retry-After": str(over.retry_after())})
        messages.error(request, over.message)
        return redirect("live:console", app_id=app.id)
    try:
        on_node(lambda node: node.publish(info, [channel], event, data, source="console"))
    except BackendUnavailable:
        if wants_json:
            return JsonResponse({"error": "The realtime backend is unavailable; try again"}, status=503)
        messages.error(request, "The realtime backend is unavailable; try again.")
        return redirect("live:console", app_id=app.id)
    if wants_json:
        return JsonResponse({"published": {"channel": channel, "event": event}})
    messages.success(request, f"Published {event} on {channel}.")
    return redirect("live:console", app_id=app.id)


@require_POST
def realtime_auth(request):
    """Sign a dashboard channel subscription, only for an app of the user's own tenant."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in first"}, status=403)
    socket_id, channel = request.POST.get("socket_id", ""), request.POST.get("channel_name", "")
    if not SOCKET_ID.fullmatch(socket_id):
        return JsonResponse({"error": "Invalid socket_id"}, status=400)
    app_id = watched_app_id(channel)
    tenant = tenant_of(request.user)
    if app_id is None or tenant is None or not apps_of(tenant).filter(pk=app_id).exists():
        return JsonResponse({"error": "Not allowed to watch this channel"}, status=403)
    dashboard = dashboard_app()
    signature = signatures.sign(dashboard.secret, signatures.channel_auth_message(socket_id, channel, None))
    return JsonResponse({"auth": f"{dashboard.key}:{signature}"})


