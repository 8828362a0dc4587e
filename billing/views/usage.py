"""An app's usage page: its metering history, with the live numbers of the dashboard's feed."""

from django.shortcuts import render

from live.views import realtime_context
from service.api.errors import BackendUnavailable
from tenants.access import tenant_app
from tenants.services import history_bounds

from .. import quotas, usage


@tenant_app
def overview(request, app):
    history = usage.history(app.id, "24h")
    return render(request, "billing/overview.html", {
        **realtime_context(request, app), "savings": history["savings"],
        "initial_history": history, "live": _live_or_none(app.id), "live_history": _recent_or_empty(app.id),
        "message_quota": quotas.messages_today(app.tenant_id), "history_settings": _history_settings(app)})


def _history_settings(app) -> dict:
    """The app's channel history settings and what its plan allows (tenants.services.history_bounds)."""
    max_size, max_ttl = history_bounds(app.tenant_id)
    return {"size": min(app.history_size, max_size), "ttl": min(app.history_ttl, max_ttl),
            "max_size": max_size, "max_ttl": max_ttl}


def _recent_or_empty(app_id: int) -> list[dict]:
    """The last five minutes of connection counts, so the live chart starts filled."""
    try:
        return usage.recent_connections(app_id)
    except BackendUnavailable:
        return []


def _live_or_none(app_id: int) -> dict | None:
    try:
        return usage.live(app_id)
    except BackendUnavailable:
        return None
