"""Plan quotas on the realtime paths: O(1) checks in this process's memory, no DB or Redis call.

* **Messages per day** (per tenant, UTC day): billing's watcher (``billing/quotas.py``) reads the
  day's totals from the cluster state after the traffic flush (at most once a second) and calls
  :func:`block` / :func:`unblock`. A publish or client event only looks the flag up, so a tenant
  can overshoot by what it sends within about a second (see billing/METERING.md, "Quotas").
* **Connects per second** and **client events per second** (per app): token buckets kept *per
  server process* (burst: one second's worth). With N processes behind a load balancer an app
  gets up to N times the rate.

Plan limits come from ``TABCAST["LIMITS_SOURCE"]`` (``function(tenant_id) -> dict``), cached per
tenant for ``APP_CACHE_SECONDS`` like the app settings; a stale entry keeps being used while one
background reload runs.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string

from . import codes

log = logging.getLogger(__name__)

# Wall clock of the message quota (its UTC day). Tests replace it to cross midnight.
clock = time.time

MESSAGES_PER_DAY = "messages_per_day"


@dataclass(frozen=True, slots=True)
class MessageQuotaHit:
    """A tenant's message quota is used up until ``resets_at`` (unix time, next 00:00 UTC)."""

    limit: int
    resets_at: float

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
    """The tenant's limits; waits for the database only the first time a tenant is seen."""
    if tenant_id not in _limits:
        return await _load(tenant_id)
    return cached_limits(tenant_id)


def forget_limits() -> None:
    _limits.clear()


# --- per-app rates: token buckets in this process ---

_connect_buckets: dict[int, list[float]] = {}  # app id -> [tokens, last refill (monotonic)]
_client_event_buckets: dict[int, list[float]] = {}


def _take(buckets: dict[int, list[float]], app_id: int, rate: int) -> bool:
    """Spend one token of a bucket that refills ``rate`` per second up to ``rate``."""
    now = time.monotonic()
    bucket = buckets.get(app_id)
    if bucket is None:
        buckets[app_id] = [rate - 1.0, now]
        return True
    tokens = min(float(rate), bucket[0] + (now - bucket[1]) * rate)
    bucket[1] = now
    if tokens < 1:
        bucket[0] = tokens
        return False
    bucket[0] = tokens - 1
    return True


async def connect_refusal(app) -> tuple[int, str] | None:
    """(close code, reason) if the app is over its connect rate here, else None (takes a token)."""
    rate = (await limits_for(app.tenant_id)).get("max_connects_per_second")
    if rate and not _take(_connect_buckets, app.id, rate):
        return codes.OVER_CAPACITY, f"Over the app's connection rate of {rate} new connections per second; retry"
    return None


def client_event_refusal(app) -> str | None:
    """Why a client event is refused by a quota (the message of its 4301), or None."""
    hit = message_refusal(app)
    if hit is not None:
        return hit.message
    rate = cached_limits(app.tenant_id).get("max_client_events_per_second")
    if rate and not _take(_client_event_buckets, app.id, rate):
        return f"Client event rejected: the app is over its rate of {rate} client events per second"
    return None
