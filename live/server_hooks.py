"""What the live pages need inside each server process, started when the realtime node starts."""

import asyncio
import logging

from asgiref.sync import sync_to_async

from .dashboard_app import dashboard_app
from .debug_stream import DebugStream
from .live_metrics import LiveMetrics

log = logging.getLogger(__name__)

_tasks: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones


def on_node_started(sender, node, **kwargs) -> None:
    """``node_started`` receiver: feed the usage page's live numbers and the debug console."""
    task = node.loop.create_task(_start_live_feeds(node))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


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
    task = node.loop.create_task(debug.run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
