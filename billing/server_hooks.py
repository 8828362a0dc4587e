"""What billing runs inside each server process, started when the realtime node starts."""

import asyncio

from .connection_history import ConnectionHistory
from .metering import UsagePersister
from .quotas import DeliveryRateWatch, MessageQuotaWatch
from .stripe_gateway import is_configured as stripe_configured
from .usage_schedule import report_hourly

_tasks: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones


def _spawn(node, coro) -> None:
    task = node.loop.create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def on_node_started(sender, node, **kwargs) -> None:
    """``node_started`` receiver: persist usage, watch message quotas (the live pages: live/)."""
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
    if stripe_configured():
        _spawn(node, report_hourly())  # safe in every process: one row per hour, Stripe dedupes
