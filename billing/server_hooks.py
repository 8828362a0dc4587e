"""What billing runs inside each server process, started when the realtime node starts."""

import asyncio
import logging

from asgiref.sync import sync_to_async

from .connection_history import ConnectionHistory
from .dashboard_app import dashboard_app
from .debug_stream import DebugStream
from .live_metrics import LiveMetrics
from .metering import UsagePersister
from .quotas import DeliveryRateWatch, MessageQuotaWatch
from .stripe_gateway import is_configured as stripe_configured
from .usage_schedule import report_hourly

log = logging.getLogger(__name__)

_tasks: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones


def _spawn(node, coro) -> None:
    task = node.loop.create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def on_node_started(sender, node, **kwargs) -> None:
    """``node_started`` receiver: persist usage, watch message quotas, feed the dashboard's live pages."""
    persister = UsagePersister(node)
    node.listeners.append(persister.note)
    node.flush_hooks.append(persister.after_flush)
    quota_watch = MessageQuotaWatch(node)  # sets the over-quota flags publishes check
    node.listeners.append(quota_watch.note)
    node.flush_hooks.append(quota_watch.after_flush)
    rate_watch = DeliveryRateWatch(node)  # sets the deliveries/s flags publishes check
    node.listeners.append(rate_watch.note)
    node.flush_hooks.append(rate_watch.after_flush)
    node.flush_hooks.append(ConnectionHistory(node).after_flush)  # the usage page's last 5 minutes
    _spawn(node, _start_live_feeds(node))
    if stripe_configured():
        _spawn(node, report_hourly())  # safe in every process: one row per hour, Stripe dedupes


async def _start_live_feeds(node) -> None:
    try:
        dashboard = await sync_to_async(dashboard_app, thread_sensitive=False)()
    except Exception:  # noqa: BLE001 - e.g. not migrated yet: metering still works, live pages do not
        log.exception("the dashboard app is unavailable; live metrics and the debug console are off")
        return
    metrics = LiveMetrics(node, dashboard)
    node.listeners.append(metrics.note)
    node.flush_hooks.append(metrics.after_flush)
    debug = DebugStream(node, dashboard)
    node.listeners.append(debug.note)
    _spawn(node, debug.run())
