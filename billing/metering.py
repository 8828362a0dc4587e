"""Usage persistence in each server process: read the live hourly buckets, upsert them.

Every ``BILLING_ROLLUP_SECONDS`` (and once more at shutdown, after the node's last traffic
flush) the process persists the buckets of the apps it served since the previous round.
Persisting is idempotent (see ``rollups``), so several processes sharing Redis may all do it.
"""

import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings

from service.realtime.tenancy import get_app_sync

from .rollups import persist_buckets

log = logging.getLogger(__name__)

# The current hour and the one before it: a round just after the hour still sees the
# previous hour's last seconds.
HOURS_PER_ROUND = 2


def rollup_seconds() -> float:
    return getattr(settings, "BILLING_ROLLUP_SECONDS", 60)


def usage_source(state) -> str:
    """Which store the buckets come from (a backend without the attribute is one shared store)."""
    return getattr(state, "usage_source", "cluster")


async def read_buckets(state, app_id: int, hours: int = HOURS_PER_ROUND) -> list[dict]:
    """The live buckets of an app's last ``hours`` hours."""
    return await state.usage(app_id, int(time.time()) // 3600 - hours + 1)


def persist_if_app_exists(app_id: int, source: str, buckets: list[dict]) -> None:
    """Persist buckets unless the app was deleted meanwhile (its rows went with it)."""
    if buckets and get_app_sync(app_id=app_id) is not None:
        persist_buckets(app_id, source, buckets)


async def persist_apps(state, app_ids, hours: int = HOURS_PER_ROUND) -> None:
    """Read and persist the buckets of these apps."""
    source = usage_source(state)
    if not source:  # the store has not said who it is yet: rows under no name would double count later
        log.warning("usage not persisted: the state backend has no usage source yet")
        return
    readings = {app_id: await read_buckets(state, app_id, hours) for app_id in app_ids}
    await sync_to_async(_persist_readings, thread_sensitive=False)(source, readings)


def _persist_readings(source: str, readings: dict[int, list[dict]]) -> None:
    for app_id, buckets in readings.items():
        persist_if_app_exists(app_id, source, buckets)


class UsagePersister:
    """Remembers which apps this process served and persists them when a round is due."""

    def __init__(self, node, every: float | None = None):
        self.node = node
        self.every = rollup_seconds() if every is None else every
        self.served: set[int] = set()
        self.due = time.monotonic() + self.every

    def note(self, app_id: int, kind: str, details: dict) -> None:
        """Node listener: any event of an app means it has usage to persist."""
        self.served.add(app_id)

    async def after_flush(self) -> None:
        """Node flush hook: persist when due, and always when the node is stopping."""
        if not self.node.stopping and time.monotonic() < self.due:
            return
        self.due = time.monotonic() + self.every
        apps, self.served = self.served | set(self.node.hub.apps()), set()
        try:
            await persist_apps(self.node.state, apps)
        except Exception:
            self.served |= apps  # try them again next round
            raise
