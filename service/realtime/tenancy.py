"""What the engine knows about a tenant's app, looked up without importing tenant models.

``settings.TABCAST["APP_SOURCE"]`` names a function ``load_app(key=None, app_id=None)``
returning an :class:`AppInfo` or None. Results are cached per process for a few seconds,
so connects and publishes do not hit the database; a save in this process clears it.
The cache is bounded (``APP_CACHE_SIZE`` apps, ``APP_CACHE_MISSES`` unknown keys, kept
apart so misses never evict apps), and keys or ids that cannot exist are refused before
any lookup.
"""

import asyncio
import logging
import re
import threading
import time
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppInfo:
    id: int
    key: str
    secret: str
    name: str = ""
    enabled: bool = True
    client_events: bool = False
    max_message_bytes: int = 10 * 1024
    allowed_origins: tuple[str, ...] = ()
    subscription_count: bool = False
    max_connections: int | None = None
    previous_secret: str = ""
    previous_secret_expires: float = 0.0
    tenant_id: int | None = None
    webhook_url: str = ""
    webhook_events: frozenset[str] | None = None  # names sent to webhook_url; None: every event
    # Channel history (docs/recovery.md): messages kept per channel (0 = no history, positions or
    # resume) and for how many seconds after the channel's last publish.
    history_size: int = 100
    history_ttl: int = 120
    extra: dict = field(default_factory=dict, compare=False)

    def valid_secrets(self, now: float | None = None) -> tuple[str, ...]:
        """The current secret, plus the rotated-out one while its grace period lasts."""
        now = time.time() if now is None else now
        if self.previous_secret and now < self.previous_secret_expires:
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def origin_allowed(self, origin: str | None) -> bool:
        """Empty allow-list: any origin. Otherwise the Origin header must match an entry."""
        if not self.allowed_origins:
            return True
        if not origin:
            return False
        origin = origin.rstrip("/").lower()
        for allowed in self.allowed_origins:
            allowed = allowed.rstrip("/").lower()
            if allowed == origin or allowed == "*":
                return True
            if allowed.startswith("*.") and origin.endswith(allowed[1:]):
                return True
        return False


def _loader():
    return import_string(settings.TABCAST["APP_SOURCE"])


# What an app key or id may look like at all. Anything else is refused before any lookup or
# cache write, so a stranger's junk (a 500 KB "key") costs nothing and is never kept.
# Keys are made by ``tenants.models.new_key`` (20 hex digits); the WebSocket route allows the
# same alphabet up to 100 characters, and so does every other path (they all come here).
MAX_KEY_LENGTH = 100
KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,%d}" % MAX_KEY_LENGTH)
MAX_APP_ID = 2**63 - 1  # a database BIGINT; larger ids cannot exist (and overflow SQLite)


def valid_key(key: object) -> bool:
    return isinstance(key, str) and len(key) <= MAX_KEY_LENGTH and KEY_RE.fullmatch(key) is not None


def valid_app_id(app_id: object) -> bool:
    return type(app_id) is int and 0 < app_id <= MAX_APP_ID


class _Segment:
    """A bounded map with a time-to-live: the oldest entry goes first when it is full.

    Reads take no lock (a dict lookup is atomic); writes do, since ``get_app_sync`` runs in
    worker threads. Insertion order is expiry order (one TTL for all), so evicting the oldest
    entry also evicts the first to expire.
    """

    __slots__ = ("entries", "max_size", "lock")

    def __init__(self, max_size: int):
        self.entries: dict = {}
        self.max_size = max_size
        self.lock = threading.Lock()

    def put(self, cache_key, expires: float, app) -> None:
        with self.lock:
            entries = self.entries
            entries.pop(cache_key, None)
            while len(entries) >= self.max_size and entries:
                del entries[next(iter(entries))]
            entries[cache_key] = (expires, app)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


# Found apps and "no such app" answers live apart: a flood of unknown keys only ever evicts
# other unknown keys, never a real app's entry (which would send its traffic to the database).
_hits = _Segment(1)
_misses = _Segment(1)
_sized_for: tuple[int, int] | None = None


def _segments() -> tuple[_Segment, _Segment]:
    global _sized_for
    sizes = (settings.TABCAST["APP_CACHE_SIZE"], settings.TABCAST["APP_CACHE_MISSES"])
    if sizes != _sized_for:  # first use, or settings changed (tests)
        _hits.max_size, _misses.max_size = max(1, sizes[0]), max(1, sizes[1])
        _sized_for = sizes
    return _hits, _misses


def _cache_key(key, app_id):
    return ("key", key) if key is not None else ("id", app_id)


def _acceptable(key, app_id) -> bool:
    return valid_key(key) if key is not None else valid_app_id(app_id)


def _newest(cache_key):
    """The cached (expires, app) of a key, fresh or not; the later one if both segments have it."""
    found, unknown = _hits.entries.get(cache_key), _misses.entries.get(cache_key)
    if found is None or (unknown is not None and unknown[0] > found[0]):
        return unknown
    return found


def get_app_sync(*, key: str | None = None, app_id: int | None = None) -> AppInfo | None:
    """The app with this key (or id), or None; malformed keys and ids are None without a lookup."""
    if not _acceptable(key, app_id):
        return None
    cache_key = _cache_key(key, app_id)
    entry = _newest(cache_key)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    return _load_into_cache(cache_key, key, app_id)


async def get_app(*, key: str | None = None, app_id: int | None = None) -> AppInfo | None:
    """Cached lookup; only a miss goes to the database (in a thread).

    An entry that expired less than a TTL ago is still answered, while one background load
    refreshes it: a busy app's connects and publishes never wait for the database (nor for a
    worker thread to get the GIL from a loop busy with fan-out: 2-20 ms every TTL, measured in
    the bench's neighbour row). Settings are at most one load older than the TTL promises."""
    if not _acceptable(key, app_id):
        return None
    cache_key = _cache_key(key, app_id)
    entry = _newest(cache_key)
    if entry is not None:
        expires, app = entry
        now = time.monotonic()
        if expires > now:
            return app
        if expires > now - settings.TABCAST["APP_CACHE_SECONDS"]:
            _refresh_soon(cache_key, key, app_id)
            return app
    return await sync_to_async(get_app_sync, thread_sensitive=False)(key=key, app_id=app_id)


_refreshes: dict = {}  # cache key -> its background load (at most one each)


def _load_into_cache(cache_key, key, app_id) -> AppInfo | None:
    app = _loader()(key=key, app_id=app_id)
    ttl = settings.TABCAST["APP_CACHE_SECONDS"]
    if ttl > 0:
        hits, misses = _segments()
        (hits if app is not None else misses).put(cache_key, time.monotonic() + ttl, app)
    return app


def _refresh_soon(cache_key, key, app_id) -> None:
    loop = asyncio.get_running_loop()
    running = _refreshes.get(cache_key)
    if running is not None and running.get_loop() is loop:
        return  # (a load left behind by a loop that was closed, e.g. in tests, does not count)

    async def refresh() -> None:
        try:
            await sync_to_async(_load_into_cache, thread_sensitive=False)(cache_key, key, app_id)
        except Exception:  # noqa: BLE001 - e.g. the database is away: the next caller past the grace waits and sees it
            log.warning("could not refresh the settings of app %s", key or app_id, exc_info=True)
        finally:
            if _refreshes.get(cache_key) is asyncio.current_task():
                del _refreshes[cache_key]

    _refreshes[cache_key] = loop.create_task(refresh())


def cache_sizes() -> tuple[int, int]:
    """(found apps, unknown keys/ids) currently cached in this process (tests, metrics)."""
    return len(_hits), len(_misses)


def forget_apps() -> None:
    """Drop cached app settings (called when an app is saved or deleted in this process)."""
    _hits.clear()
    _misses.clear()
