"""Plan quotas on the realtime paths: O(1) checks in this process's memory, no DB or Redis call.

* **Messages per day** (per tenant, UTC day): billing's watcher (``billing/quotas.py``) reads the
  day's totals from the cluster state after the traffic flush (at most once a second) and calls
  :func:`block` / :func:`unblock`. A publish or client event only looks the flag up, so a tenant
  can overshoot by what it sends within about a second (see billing/METERING.md, "Quotas").
* **Connects per second** and **client events per second** (per app): token buckets kept *per
  server process* (burst: one second's worth). With N processes behind a load balancer an app
  gets up to N times the rate.
* **Deliveries per second** (per app): billing's ``DeliveryRateWatch`` measures each app's
  deliveries over the last second *cluster-wide* (the state's traffic totals, after the flush) and
  calls :func:`block_deliveries` / :func:`unblock_deliveries`; on top of that a publish is refused
  at once when *this process* has, since its last flush (under a second), written the cap's worth
  of the app's deliveries or accepted publishes worth that many (its publishes times the fan-out
  the watch last measured). Both are O(1) lookups here.

Plan limits come from ``TABCAST["LIMITS_SOURCE"]`` (``function(tenant_id) -> dict``), cached per
tenant for ``APP_CACHE_SECONDS`` like the app settings; a stale entry keeps being used while one
background reload runs.
"""

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string

from . import codes
from .ratelimit import TokenBucket

log = logging.getLogger(__name__)

# Wall clock of the message quota (its UTC day). Tests replace it to cross midnight.
clock = time.time

MESSAGES_PER_DAY = "messages_per_day"
DELIVERIES_PER_SECOND = "deliveries_per_second"


@dataclass(frozen=True, slots=True)
class MessageQuotaHit:
    """A tenant's message quota is used up until ``resets_at`` (unix time, next 00:00 UTC)."""

    limit: int
    resets_at: float
    quota: ClassVar[str] = MESSAGES_PER_DAY

    @property
    def resets_at_iso(self) -> str:
        return datetime.fromtimestamp(self.resets_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def retry_after(self, now: float | None = None) -> int:
        return max(1, int(self.resets_at - (clock() if now is None else now) + 0.999))

    @property
    def message(self) -> str:
        return (f"Message quota exceeded: the plan's {MESSAGES_PER_DAY} quota of {self.limit:,} messages is used "
                f"up; it resets at {self.resets_at_iso}")


_blocked: dict[int, MessageQuotaHit] = {}  # tenant id -> until when


def block(tenant_id: int, limit: int, resets_at: float) -> None:
    _blocked[tenant_id] = MessageQuotaHit(limit, resets_at)


def unblock(tenant_id: int) -> None:
    _blocked.pop(tenant_id, None)


def blocked_tenants() -> list[int]:
    return list(_blocked)


def message_refusal(app) -> MessageQuotaHit | None:
    """Whether the app's tenant is over its message quota now (one dict lookup)."""
    hit = _blocked.get(app.tenant_id)
    if hit is None:
        return None
    if clock() >= hit.resets_at:  # a new UTC day: the quota is back even before the next refresh
        _blocked.pop(app.tenant_id, None)
        return None
    return hit


# --- deliveries per second, per app ---


@dataclass(frozen=True, slots=True)
class DeliveryRateHit:
    """An app delivered more than its plan's deliveries/s: its publishes wait for the next second.

    ``delivered`` is what was measured in ``scope``: "cluster-wide", frames written to sockets by
    every process over the last second; "this server process", what this process wrote or its
    accepted publishes caused since its last flush. ``resets_at`` (unix time) is when the rate is
    measured again; ``expires`` (monotonic) when a flag lapses if nobody renews it.
    """

    limit: int
    delivered: int
    scope: str
    resets_at: float
    expires: float
    quota: ClassVar[str] = DELIVERIES_PER_SECOND

    @property
    def resets_at_iso(self) -> str:
        return datetime.fromtimestamp(math.ceil(self.resets_at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def retry_after(self, now: float | None = None) -> int:
        return 1  # the rate is measured every second

    @property
    def message(self) -> str:
        return (f"Delivery rate exceeded: {self.delivered:,} deliveries to sockets in the last second "
                f"({self.scope}), over the plan's {DELIVERIES_PER_SECOND} limit of {self.limit:,}; "
                f"retry after 1 second")


_rate_blocked: dict[int, DeliveryRateHit] = {}  # app id -> its flag, set by billing's DeliveryRateWatch
# A flag nobody renews (the watch stopped, the state is away) lapses this long after its measurement.
RATE_FLAG_SECONDS = 2.0


def block_deliveries(app_id: int, limit: int, delivered: int) -> None:
    """The app's cluster-wide deliveries in the last second were over ``limit``: refuse its publishes."""
    _rate_blocked[app_id] = DeliveryRateHit(limit, delivered, "cluster-wide", clock() + 1.0,
                                            time.monotonic() + RATE_FLAG_SECONDS)


def unblock_deliveries(app_id: int) -> None:
    _rate_blocked.pop(app_id, None)


def rate_blocked_apps() -> list[int]:
    return list(_rate_blocked)


_fan_out: dict[int, float] = {}  # app id -> cluster-wide deliveries per message, as last measured


def note_fan_out(app_id: int, deliveries_per_message: float) -> None:
    _fan_out[app_id] = deliveries_per_message


def forget_fan_out(app_id: int) -> None:
    _fan_out.pop(app_id, None)


def delivery_refusal(app, traffic=None) -> DeliveryRateHit | None:
    """Whether the app is over its deliveries/s now (dict lookups, no database or Redis call).

    ``traffic`` is the app's ``AppTraffic`` in this process's hub (counters since the last flush,
    under a second old), if any. Refused at once when this process has already written the cap's
    worth of the app's deliveries, or accepted publishes worth that many deliveries cluster-wide
    (its messages times the fan-out last measured): so each process stops a burst within its
    second, wherever the subscribers are, before the cluster-wide flag catches up.
    """
    hit = _rate_blocked.get(app.id)
    if hit is not None:
        if time.monotonic() < hit.expires:
            return hit
        _rate_blocked.pop(app.id, None)
    if traffic is not None and (traffic.deliveries or traffic.messages):
        cap = cached_limits(app.tenant_id).get("max_deliveries_per_second")
        if cap:
            caused = max(traffic.deliveries, int(traffic.messages * _fan_out.get(app.id, 0.0)))
            if caused >= cap:
                return DeliveryRateHit(cap, caused, "this server process", clock() + 1.0, 0.0)
    return None


# --- plan limits, cached per tenant ---

_limits: dict[int | None, tuple[float, dict]] = {}  # tenant id -> (expires, limits)
_reloads: dict[int | None, asyncio.Task] = {}


def _load_sync(tenant_id: int | None) -> dict:
    path = settings.TABCAST.get("LIMITS_SOURCE")
    if not path or tenant_id is None:
        return {}
    return import_string(path)(tenant_id) or {}


async def _load(tenant_id: int | None) -> dict:
    try:
        limits = await sync_to_async(_load_sync, thread_sensitive=False)(tenant_id)
    except Exception:  # noqa: BLE001 - e.g. the database is away: keep what we had, else no limits
        log.warning("could not load the plan limits of tenant %s", tenant_id, exc_info=True)
        hit = _limits.get(tenant_id)
        return hit[1] if hit else {}
    _limits[tenant_id] = (time.monotonic() + settings.TABCAST["APP_CACHE_SECONDS"], limits)
    return limits


def _reload_soon(tenant_id: int | None) -> None:
    if tenant_id in _reloads:
        return
    try:
        task = asyncio.get_running_loop().create_task(_load(tenant_id))
    except RuntimeError:  # no loop (sync caller): the next async caller reloads
        return
    _reloads[tenant_id] = task
    task.add_done_callback(lambda _: _reloads.pop(tenant_id, None))


def cached_limits(tenant_id: int | None) -> dict:
    """The tenant's limits as last loaded (possibly stale: then a reload starts); {} if never loaded."""
    hit = _limits.get(tenant_id)
    if hit is None or hit[0] <= time.monotonic():
        _reload_soon(tenant_id)
    return hit[1] if hit else {}


async def limits_for(tenant_id: int | None) -> dict:
    """The tenant's limits; waits for the database only the first time a tenant is seen.

    Callers that arrive while that first load runs (a burst of connects) wait for the same load:
    one query, not one per socket."""
    if tenant_id not in _limits:
        _reload_soon(tenant_id)
        loading = _reloads.get(tenant_id)
        if loading is None:  # no running loop to load in the background: load here
            return await _load(tenant_id)
        return await asyncio.shield(loading)
    return cached_limits(tenant_id)


def forget_limits() -> None:
    _limits.clear()


# --- per-app rates: token buckets in this process ---

# Per app id; each bucket refills at the plan's rate per second, up to that rate (a second's worth).
_connect_buckets = TokenBucket()
_client_event_buckets = TokenBucket()


def _take(buckets: TokenBucket, app_id: int, rate: int) -> bool:
    return buckets.allow(app_id, rate, rate)


async def connect_refusal(app) -> tuple[int, str] | None:
    """(close code, reason) if the app is over its connect rate here, else None (takes a token)."""
    rate = (await limits_for(app.tenant_id)).get("max_connects_per_second")
    if rate and not _take(_connect_buckets, app.id, rate):
        return codes.OVER_CAPACITY, f"Over the app's connection rate of {rate} new connections per second; retry"
    return None


def client_event_refusal(app) -> str | None:
    """Why a client event is refused by a quota (the message of its 4301), or None."""
    hit = message_refusal(app) or delivery_refusal(app)
    if hit is not None:
        return hit.message
    rate = cached_limits(app.tenant_id).get("max_client_events_per_second")
    if rate and not _take(_client_event_buckets, app.id, rate):
        return f"Client event rejected: the app is over its rate of {rate} client events per second"
    return None
