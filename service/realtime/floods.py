"""Log a flood as a flood: one line when it starts, a summary while it lasts, one when it ends.

Some events are worth a log line one at a time but come in thousands on a bad day: a wave of
slow-reader closes, a client sending bad frames in a loop, a bot hammering the connect
endpoint past its per-IP limit, a slowloris attack running into the handshake deadline, a
scanner collecting 404s. Logging each one buries the log (and costs the CPU the server needs
then). A :class:`Flood` counts them instead (``outage.py`` does the same for Redis outages):

- fewer than ``threshold`` events in ``window`` seconds: :meth:`Flood.hit` returns True and the
  caller logs its own line (or logs nothing, for events not worth a line one at a time);
- the ``threshold``-th event within ``window`` seconds starts a flood: one WARNING line saying
  so (with that event's key and detail as an example), then :meth:`hit` returns False: the
  caller logs nothing;
- while it lasts, a summary line every ``summary_every`` seconds (counts, top keys);
- ``quiet`` seconds without an event end it: one line with the totals.

Keys (an app id, a client address, a close code) only label the counts in the summaries: at
most ``MAX_KEYS`` are told apart per flood, the rest are counted as "other". A flood is
detected over all keys together, so a distributed flood (2,000 addresses, one connect each) is
one flood too.

Cost: a lock, a clock read and a few integer updates per event; a 1 s timer while a flood lasts
(on the event loop when there is one, else a daemon thread). Nothing per delivery.
"""

import asyncio
import contextvars
import logging
import threading
import time
from collections import Counter

MAX_KEYS = 1000  # keys told apart in one flood's counts; further ones are "other"
TOP_KEYS = 3  # keys named in a summary line


class Flood:
    def __init__(self, name: str, what: str, logger: str, *, threshold: int = 20, window: float = 10.0,
                 summary_every: float = 30.0, quiet: float | None = None, context: bool = True,
                 clock=time.monotonic):
        self.name = name  # a short identifier: the "flood" field of a JSON log line
        self.what = what  # what is counted, for people: "slow-reader closes"
        self.log = logging.getLogger(logger)
        self.threshold = max(1, threshold)
        self.window = window
        self.summary_every = summary_every
        self.quiet = window if quiet is None else quiet
        # False: the flood's lines do not take the app/socket/request of whoever hit it last (a
        # slow-reader close happens in the publisher's task, not the closed socket's).
        self.context = context
        self.clock = clock
        self._lock = threading.Lock()
        self._window_start = float("-inf")
        self._window_count = 0
        self._window_keys: Counter = Counter()  # at most `threshold` keys: a window ends or becomes a flood
        self.flooding = False
        self._since = 0.0
        self._last = 0.0
        self._total = 0
        self._summarized_at = 0.0
        self._at_summary = 0
        self._keys: Counter = Counter()
        self._timer_armed = False

    def hit(self, key=None, detail: str = "") -> bool:
        """Count one event; True if the caller may log it on its own line (no flood now)."""
        now = self.clock()
        with self._lock:
            if self.flooding:
                self._last = now
                self._total += 1
                self._count_key(key)
                summary_due = now - self._summarized_at >= self.summary_every
            else:
                if now - self._window_start >= self.window:
                    self._window_start, self._window_count = now, 0
                    self._window_keys.clear()
                self._window_count += 1
                if key is not None:
                    self._window_keys[key] += 1
                if self._window_count < self.threshold:
                    return True
                self._start(now)
                count, started_in = self._total, now - self._window_start
                summary_due = None
        if summary_due is None:
            self._emit("start", count, "%s: flood started, %d in %.1f s%s%s; a summary every %.0f s instead of "
                       "a line each", self.what, count, started_in, _keys_text(key), _detail(detail),
                       self.summary_every)
        elif summary_due:
            self.check()
        return False

    def check(self) -> None:
        """Summary or end line if one is due (called every second by a timer while a flood lasts)."""
        now = self.clock()
        with self._lock:
            if not self.flooding:
                return
            if now - self._last >= self.quiet:
                self.flooding = False
                line = ("end", self._total, "%s: flood over after %.1f s, %d in all%s", self.what,
                        self._last - self._since, self._total, self._top())
                self._keys = Counter()
            elif now - self._summarized_at >= self.summary_every:
                count = self._total - self._at_summary
                line = ("summary", count, "%s: flood goes on after %.0f s, %d in the last %.0f s%s", self.what,
                        now - self._since, count, now - self._summarized_at, self._top())
                self._summarized_at, self._at_summary = now, self._total
            else:
                return
        self._emit(*line)

    # --- inside the lock ---

    def _start(self, now: float) -> None:
        self.flooding = True
        self._since = self._last = self._summarized_at = now
        self._total = self._at_summary = self._window_count
        self._keys, self._window_keys = self._window_keys, Counter()
        self._window_count = 0
        self._arm_timer()

    def _count_key(self, key) -> None:
        if key is None:
            return
        keys = self._keys
        if key in keys or len(keys) < MAX_KEYS:
            keys[key] += 1
        else:
            keys["other"] += 1

    def _top(self) -> str:
        if not self._keys:
            return ""
        top = ", ".join(f"{key}: {count}" for key, count in self._keys.most_common(TOP_KEYS))
        more = len(self._keys) - TOP_KEYS
        return f" (most from {top}{f'; {more} more' if more > 0 else ''})"

    def _arm_timer(self) -> None:
        if self._timer_armed:
            return
        self._timer_armed = True
        try:
            # In an empty context: summary and end lines are about the flood, not about the socket
            # or request whose event happened to start it.
            asyncio.get_running_loop().call_later(1.0, self._tick, context=contextvars.Context())
        except RuntimeError:  # not on an event loop (a Django worker thread)
            timer = threading.Timer(1.0, self._tick)
            timer.daemon = True
            timer.start()

    def _tick(self) -> None:
        self._timer_armed = False
        self.check()
        with self._lock:
            if self.flooding:
                self._arm_timer()

    # --- outside the lock ---

    def _emit(self, state: str, count: int, message: str, *args) -> None:
        extra = {"flood": self.name, "flood_state": state, "count": count}
        if not self.context:
            extra["no_context"] = True  # read by service.logs.ContextFilter
        self.log.warning(message, *args, extra=extra)


def _detail(detail: str) -> str:
    # One line: a client's text (an unknown event name) may hold line breaks.
    return f" (e.g. {' '.join(detail.split())[:200]})" if detail else ""


def _keys_text(key) -> str:
    return "" if key is None else f" [{key}]"


# The floods the server knows (thresholds: events in 10 s before it is called a flood).
slow_closes = Flood("slow_reader_closes", "slow-reader closes (4100)", "service.realtime.connection",
                    threshold=20, context=False)
refused_connects = Flood("refused_connects", "WebSocket connects refused", "service.realtime.consumer",
                         threshold=50, context=False)
bad_frames = Flood("bad_frames", "frames answered with pusher:error", "service.realtime.consumer",
                   threshold=100)
frame_failures = Flood("frame_failures", "frames that failed with an exception", "service.realtime.consumer",
                       threshold=5)
handshake_timeouts = Flood("handshake_timeouts", "connections aborted at the handshake deadline",
                           "service.realtime.ws_protocol", threshold=50, context=False)
dropped_webhooks = Flood("dropped_webhooks", "webhooks dropped (queue full)", "service.realtime.webhooks",
                         threshold=20, context=False)
