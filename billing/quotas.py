"""The message quota: how many messages a tenant used today, and the flag the engine checks.

Messages are counted as Pusher counts them (billing/METERING.md, "Quotas"): each publish (per
channel), each frame delivered to a physical socket, and each webhook. The live counters are
the node's usage buckets in the cluster state (flushed every second); in embedded mode an
earlier process's hours of the same day are in the persisted rollups under its own source.

:class:`MessageQuotaWatch` runs in every server process right after the node's traffic flush,
at most every ``QUOTA_REFRESH_SECONDS``. It re-reads only the tenants that published or sent
client events *through this process* since its last round (the only places a quota is
enforced), plus the tenants it is blocking, and sets or clears their flag in
``service.realtime.quotas``. The publish path itself only reads that flag.

:class:`DeliveryRateWatch` does the same for each app's deliveries per second: right after each
flush it reads the cluster-wide delivery total of the apps that published here lately and
compares what it grew by since the previous round with the plan's cap.
"""

import logging
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.db.models import Sum

from service.api.engine import on_node
from service.api.errors import BackendUnavailable
from service.realtime import quotas
from service.realtime.tenancy import get_app

from .metering import usage_source
from .models import HourlyUsage
from .services import message_quota

log = logging.getLogger(__name__)

QUOTA_REFRESH_SECONDS = 1.0
# How long a tenant's app list and the persisted usage of earlier processes are reused.
SLOW_PARTS_SECONDS = 30.0
COUNTED = ("messages", "deliveries")
# An app that published through this process is measured every second for this long after, so its
# baseline is current when it bursts again (one state read per app and second).
RATE_TRACK_SECONDS = 60.0
FAN_OUT_ROUNDS = 5  # an app's deliveries per message are measured over this many rounds (seconds)
monotonic = time.monotonic  # the delivery rate's clock (tests replace it)


def day_of(now: float) -> tuple[int, float]:
    """(first hour bucket of the UTC day, unix time of the next 00:00 UTC)."""
    start = int(now // 86400) * 86400
    return start // 3600, float(start + 86400)


def tenant_app_ids(tenant_id: int) -> list[int]:
    from tenants.models import App

    return list(App.objects.filter(tenant_id=tenant_id).values_list("id", flat=True))


def persisted_elsewhere(app_ids: list[int], first_hour: int, source: str | None, *, every_source=False) -> int:
    """Today's messages persisted by other counter stores than ``source`` (earlier embedded-mode
    processes, or a Redis whose data was lost). A store that does not know its name yet (Redis
    just started) reports 0 rather than count its own persisted readings twice."""
    if not source and not every_source:
        return 0
    start = datetime.fromtimestamp(first_hour * 3600, UTC)
    rows = HourlyUsage.objects.filter(app_id__in=app_ids, hour__gte=start, hour__lt=start + timedelta(days=1))
    if source:
        rows = rows.exclude(source=source)
    totals = rows.aggregate(**{name: Sum(name) for name in COUNTED})
    return sum(totals[name] or 0 for name in COUNTED)


async def live_today(state, app_ids: list[int], first_hour: int) -> int:
    """Today's messages in the live buckets of the cluster state."""
    used = 0
    for app_id in app_ids:
        for bucket in await state.usage(app_id, first_hour):
            if bucket["hour"] < first_hour + 24:
                used += sum(bucket.get(name, 0) for name in COUNTED)
    return used


class MessageQuotaWatch:
    """Node listener + flush hook: keeps this process's over-quota flags current."""

    def __init__(self, node, every: float = QUOTA_REFRESH_SECONDS):
        self.node = node
        self.every = every
        self.active: set[int] = set()  # apps that published here since the last round
        self.due = 0.0
        self._slow: dict[tuple[int, int], tuple[float, list[int], int]] = {}  # (tenant, day) -> parts

    def note(self, app_id: int, kind: str, details: dict) -> None:
        if kind in ("published", "client_event"):
            self.active.add(app_id)

    async def after_flush(self) -> None:
        if time.monotonic() < self.due:
            return
        self.due = time.monotonic() + self.every
        apps, self.active = self.active, set()
        tenants = set(quotas.blocked_tenants())
        for app_id in apps:
            app = await get_app(app_id=app_id)
            if app is not None and app.tenant_id is not None:
                tenants.add(app.tenant_id)
        for tenant_id in tenants:
            try:
                await self.refresh(tenant_id)
            except Exception:  # noqa: BLE001 - the flag stays as it was; retried when the tenant publishes
                log.warning("could not refresh the message quota of tenant %s", tenant_id, exc_info=True)
                self.active |= apps

    async def refresh(self, tenant_id: int) -> None:
        limit = (await quotas.limits_for(tenant_id)).get("max_messages_per_day")
        if not limit:
            quotas.unblock(tenant_id)
            return
        now = quotas.clock()
        first_hour, resets_at = day_of(now)
        used = await self.used_today(tenant_id, first_hour)
        if used >= limit:
            quotas.block(tenant_id, limit, resets_at)
        else:
            quotas.unblock(tenant_id)

    async def used_today(self, tenant_id: int, first_hour: int) -> int:
        key = (tenant_id, first_hour)
        slow = self._slow.get(key)
        if slow is None or slow[0] <= time.monotonic():
            source = usage_source(self.node.state) or None
            app_ids, elsewhere = await sync_to_async(_slow_parts, thread_sensitive=False)(
                tenant_id, first_hour, source)
            self._slow = {k: v for k, v in self._slow.items() if k[1] == first_hour}
            keep = SLOW_PARTS_SECONDS if source else 0.0  # a store still unnamed: ask again next round
            slow = self._slow[key] = (time.monotonic() + keep, app_ids, elsewhere)
        _, app_ids, elsewhere = slow
        return elsewhere + await live_today(self.node.state, app_ids, first_hour)


class DeliveryRateWatch:
    """Node listener + flush hook: each app's cluster-wide deliveries in the last second vs. its cap.

    The state's traffic totals hold every process's deliveries as of its last flush (each process
    flushes every second), so the growth between two rounds, over the time between them, is the
    app's cluster-wide rate. Over the cap: ``quotas.block_deliveries`` until the next round; back
    under it: ``quotas.unblock_deliveries``. It also notes the app's deliveries per message (its
    fan-out), so the publish path can tell what this process's own publishes cost. An app is
    measured while it published here in the last ``RATE_TRACK_SECONDS`` or is blocked here (its
    first round only takes the baseline).
    """

    def __init__(self, node, track_seconds: float = RATE_TRACK_SECONDS):
        self.node = node
        self.track_seconds = track_seconds
        self.tracked: dict[int, float] = {}  # app id -> when it last published here (monotonic)
        # app id -> its last readings, oldest first: (when read, deliveries total, messages total)
        self.previous: dict[int, deque[tuple[float, int, int]]] = {}

    def note(self, app_id: int, kind: str, details: dict) -> None:
        if kind in ("published", "client_event"):
            self.tracked[app_id] = monotonic()

    async def after_flush(self) -> None:
        blocked = set(quotas.rate_blocked_apps())
        now = monotonic()
        for app_id in list(self.tracked.keys() | blocked):
            if now - self.tracked.get(app_id, now) > self.track_seconds and app_id not in blocked:
                self.tracked.pop(app_id, None)
                self.previous.pop(app_id, None)
                quotas.forget_fan_out(app_id)
                continue
            try:
                await self.measure(app_id)
            except Exception:  # noqa: BLE001 - a flag lapses by itself; the next round starts a new baseline
                self.previous.pop(app_id, None)
                log.warning("could not measure the delivery rate of app %s", app_id, exc_info=True)

    async def measure(self, app_id: int) -> None:
        app = await get_app(app_id=app_id)
        cap = (await quotas.limits_for(app.tenant_id)).get("max_deliveries_per_second") if app else None
        if not cap:
            quotas.unblock_deliveries(app_id)
            quotas.forget_fan_out(app_id)
            self.previous.pop(app_id, None)
            return
        totals = await self.node.state.traffic_totals(app_id)
        deliveries, messages = totals.get("deliveries", 0), totals.get("messages", 0)
        now = monotonic()
        readings = self.previous.setdefault(app_id, deque(maxlen=FAN_OUT_ROUNDS + 1))
        readings.append((now, deliveries, messages))
        if len(readings) < 2 or now <= readings[-2][0]:
            return
        before, oldest = readings[-2], readings[0]
        # Deliveries per message over the last few rounds (messages are counted where they are
        # published, deliveries where the subscribers are, each flushed at its own moment): lets
        # each process weigh its own publishes at once.
        if messages > oldest[2]:
            quotas.note_fan_out(app_id, (deliveries - oldest[1]) / (messages - oldest[2]))
        rate = (deliveries - before[1]) / (now - before[0])
        if rate > cap:
            quotas.block_deliveries(app_id, cap, round(rate))
        else:
            quotas.unblock_deliveries(app_id)


def _slow_parts(tenant_id: int, first_hour: int, source: str | None) -> tuple[list[int], int]:
    app_ids = tenant_app_ids(tenant_id)
    return app_ids, persisted_elsewhere(app_ids, first_hour, source)


def messages_today(tenant_id: int) -> dict:
    """The dashboard's view of the quota: used today, the limit, the share, when it resets."""
    now = quotas.clock()
    first_hour, resets_at = day_of(now)
    app_ids = tenant_app_ids(tenant_id)
    limit = message_quota(tenant_id)

    async def read(node):
        return usage_source(node.state) or None, await live_today(node.state, app_ids, first_hour)

    try:
        source, live = on_node(read)
        used = live + persisted_elsewhere(app_ids, first_hour, source)
        current = True
    except BackendUnavailable:  # what was persisted (up to a minute old)
        used, current = persisted_elsewhere(app_ids, first_hour, None, every_source=True), False
    share = (used / limit) if limit else None
    return {
        "used": used, "limit": limit, "share": share,
        "percent": None if share is None else min(100.0, round(share * 100, 1)),
        "bar_percent": None if share is None else min(100, int(share * 100)),
        "over": bool(limit) and used >= limit, "current": current,
        "resets_at": datetime.fromtimestamp(resets_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
