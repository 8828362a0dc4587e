"""Usage reads for the dashboard: live counts from the node, history from the rollups."""

import logging

from django.utils import timezone

from service.api.engine import on_node
from service.api.errors import BackendUnavailable

from . import connection_history, rollups
from .metering import HOURS_PER_ROUND, persist_if_app_exists, read_buckets, usage_source
from .savings import savings

log = logging.getLogger(__name__)

RANGES = {"24h": ("hour", 24), "30d": ("day", 30)}


def persist_now(app_id: int) -> None:
    """Persist the app's live buckets first, so history includes this very moment."""
    try:
        source, buckets = on_node(lambda node: _read(node, app_id))
    except BackendUnavailable:
        log.warning("live usage of app %s unavailable; history shows what was persisted", app_id)
        return
    if source:
        persist_if_app_exists(app_id, source, buckets)


async def _read(node, app_id: int):
    return usage_source(node.state), await read_buckets(node.state, app_id, HOURS_PER_ROUND)


def history(app_id: int, range_name: str) -> dict:
    """A range's series (hourly for 24h, daily for 30d), its summary and its savings."""
    persist_now(app_id)
    granularity, count = RANGES[range_name]
    series = rollups.hourly_series if granularity == "hour" else rollups.daily_series
    points = series(app_id, count, timezone.now())
    summary = rollups.summarize(points)
    return {"app_id": app_id, "range": range_name, "granularity": granularity, "points": points,
            "summary": summary,
            "savings": [{**saving.__dict__, "display": saving.display} for saving in savings(summary)]}


def recent_connections(app_id: int) -> list[dict]:
    """The connection counts recorded each second over the last five minutes (billing/connection_history.py)."""
    return on_node(lambda node: connection_history.read(node, app_id))


def live(app_id: int) -> dict:
    """Connections now and the running traffic totals, across the cluster."""
    async def read(node):
        sockets, tabs = await node.state.connection_counts(app_id)
        return {"app_id": app_id, "sockets": sockets, "tabs": tabs,
                "connections_saved": max(tabs - sockets, 0), "totals": await node.state.traffic_totals(app_id)}
    return on_node(read)
