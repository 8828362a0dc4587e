"""What the engine knows about a tenant's app, looked up without importing tenant models.

``settings.TABCAST["APP_SOURCE"]`` names a function ``load_app(key=None, app_id=None)``
returning an :class:`AppInfo` or None. Results are cached per process for a few seconds,
so connects and publishes do not hit the database; a save in this process clears it.
"""

import time
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string


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


_cache: dict[tuple[str, object], tuple[float, AppInfo | None]] = {}


def _loader():
    return import_string(settings.TABCAST["APP_SOURCE"])


def get_app_sync(*, key: str | None = None, app_id: int | None = None) -> AppInfo | None:
    cache_key = ("key", key) if key is not None else ("id", app_id)
    hit = _cache.get(cache_key)
    now = time.monotonic()
    if hit and hit[0] > now:
        return hit[1]
    app = _loader()(key=key, app_id=app_id)
    _cache[cache_key] = (now + settings.TABCAST["APP_CACHE_SECONDS"], app)
    return app


async def get_app(*, key: str | None = None, app_id: int | None = None) -> AppInfo | None:
    """Cached lookup; only a miss goes to the database (in a thread)."""
    cache_key = ("key", key) if key is not None else ("id", app_id)
    hit = _cache.get(cache_key)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    return await sync_to_async(get_app_sync, thread_sensitive=False)(key=key, app_id=app_id)


def forget_apps() -> None:
    """Drop cached app settings (called when an app is saved or deleted in this process)."""
    _cache.clear()
