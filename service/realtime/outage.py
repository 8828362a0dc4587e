"""Log a Redis outage as an outage: one line when it starts, a summary while it lasts, one when it ends.

During an outage every publish, subscribe and background round fails the same way; logging
each one (with a traceback) buried the log under ~1,500 lines in 5 s. Instead the parts that
can tell whether Redis works (the broker's delivery probe, the state backend's heartbeat)
report ``lost(part, exc)`` and ``back(part)``, and everything else that fails meanwhile calls
``absorb(exc)``, which only counts. The outage is over when every part that lost Redis has it
back. A backend failure outside a known outage (a timeout, a dropped connection that healed at
once) is logged as one line, at most once per ``SUMMARY_EVERY`` seconds.
"""

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

SUMMARY_EVERY = 30.0  # seconds between "still unreachable" lines, and between stray-failure lines


def is_backend_failure(exc: BaseException) -> bool:
    """Redis or the network failed, as opposed to a bug (service/api/engine.py answers these with 503)."""
    return isinstance(exc, (OSError, asyncio.TimeoutError)) or type(exc).__module__.startswith("redis")


def describe(exc: BaseException) -> str:
    """One short line for an exception (never a traceback)."""
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Outage:
    def __init__(self, what: str = "Redis"):
        self.what = what
        self.down: set[str] = set()  # parts that currently cannot reach it
        self.since = 0.0
        self.failed = 0  # operations that failed since the outage started
        self._summarized_at = 0.0
        self._failed_at_summary = 0
        self._stray = 0  # failures outside a known outage not logged yet
        self._stray_logged_at = float("-inf")
        # Called with the part that saw it first when an outage starts, so the other parts stop
        # trusting their connections too (and end the outage together once Redis is back).
        self.on_start: list = []

    @property
    def ongoing(self) -> bool:
        return bool(self.down)

    def lost(self, part: str, exc: BaseException | str) -> None:
        """``part`` (e.g. "delivery", "state") cannot reach the backend; logs only if this starts an outage."""
        if part in self.down:
            self.tick()
            return
        now = time.monotonic()
        if not self.down:
            self.since = self._summarized_at = now
            self.failed = self._failed_at_summary = 0
            reason = exc if isinstance(exc, str) else describe(exc)
            log.warning("%s outage: %s cannot reach it (%s); publishes answer 503 until delivery works again",
                        self.what, part, reason)
            self.down.add(part)
            for listener in list(self.on_start):
                try:
                    listener(part)
                except Exception:  # noqa: BLE001 - a listener never stops the report
                    log.exception("outage listener failed")
        self.down.add(part)

    def back(self, part: str) -> None:
        if part not in self.down:
            return
        from . import metrics

        metrics.REDIS_RECONNECTS.labels(part).inc()  # /metrics: tabcast_redis_reconnects_total{part}
        self.down.discard(part)
        if not self.down:
            log.warning("%s outage over after %.1f s (%s back last); %d operations failed meanwhile",
                        self.what, time.monotonic() - self.since, part, self.failed)

    def absorb(self, exc: BaseException) -> bool:
        """Count a failed operation; True if it was a backend failure (the caller then logs nothing)."""
        if not is_backend_failure(exc):
            return False
        if self.down:
            self.tick()
            self.failed += 1
            return True
        self._stray += 1
        now = time.monotonic()
        if now - self._stray_logged_at >= SUMMARY_EVERY:
            more = f" ({self._stray - 1} more since the last such line)" if self._stray > 1 else ""
            log.warning("%s operation failed: %s%s", self.what, describe(exc), more)
            self._stray, self._stray_logged_at = 0, now
        return True

    def tick(self) -> None:
        """While the outage lasts, a summary line every SUMMARY_EVERY seconds (called by the probes too)."""
        if not self.down:
            return
        now = time.monotonic()
        if now - self._summarized_at >= SUMMARY_EVERY:
            log.warning("%s still unreachable after %.0f s (%s): %d operations failed in the last %.0f s",
                        self.what, now - self.since, ", ".join(sorted(self.down)),
                        self.failed - self._failed_at_summary, now - self._summarized_at)
            self._summarized_at, self._failed_at_summary = now, self.failed


# The process's Redis (channel layer and state backend share it).
redis_outage = Outage("Redis")


class ConnectionLostListeners:
    """Mixin of the Redis channel layers (redis_layer.py, cluster_layer.py): ``on_connection_lost``
    listeners, told by ``_connection_lost(exc)`` whenever a subscriber connection fails (its
    subscriptions are gone: the broker answers 503 until delivery works again)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lost_listeners: list[Callable[[BaseException], None]] = []

    def on_connection_lost(self, listener: Callable[[BaseException], None]) -> None:
        """Call ``listener(exc)`` whenever a subscriber connection fails (its subscriptions are gone)."""
        self._lost_listeners.append(listener)

    def _connection_lost(self, exc: BaseException) -> None:
        for listener in self._lost_listeners:
            try:
                listener(exc)
            except Exception:  # noqa: BLE001 - a listener never stops the receive loop
                log.exception("connection-lost listener failed")
