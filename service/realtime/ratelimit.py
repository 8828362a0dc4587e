"""The one token bucket of Tabcast, used by every in-process rate limit:

* WebSocket connects per client address (``admission.py``),
* connects and client events per app under a plan's limits (``quotas.py``),
* HTTP API requests per app (``service/api/throttling.py``),
* the demo's public endpoints (``service/sdk/demo.py``).

(The dashboard's log-in/sign-up limit, ``tenants/ratelimit.py``, is a different thing: a fixed
window counted in the shared cache, so that it holds across processes.)
"""

import time
from typing import Hashable


class TokenBucket:
    """A token bucket per key: ``rate`` tokens a second, holding at most ``burst``. A key seen
    for the first time (or forgotten since) starts with a full bucket; each request spends one.

    ``rate``/``burst`` may be given per call instead (per-app plan limits). ``max_keys`` bounds
    memory: past it, keys whose bucket is full again are forgotten, and if that is not enough,
    every key (a flood of addresses cannot grow memory without bound).
    """

    def __init__(self, rate: float = 0, burst: float = 0, *, clock=time.monotonic, max_keys: int | None = None):
        self.rate, self.burst = rate, burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[Hashable, list[float]] = {}  # key -> [tokens, time of tokens]

    def take(self, key: Hashable, rate: float | None = None, burst: float | None = None) -> float:
        """Spend one of ``key``'s tokens: 0.0 if it had one, else the seconds until it has one."""
        rate = self.rate if rate is None else rate
        burst = self.burst if burst is None else burst
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if self.max_keys is not None and len(self._buckets) >= self.max_keys:
                self.forget_full(rate, burst)
                if len(self._buckets) >= self.max_keys:
                    self._buckets.clear()
            bucket = self._buckets[key] = [float(burst), now]
        tokens = min(float(burst), bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return max((1 - tokens) / rate, 0.001) if rate > 0 else float("inf")
        bucket[0] = tokens - 1
        return 0.0

    def allow(self, key: Hashable, rate: float | None = None, burst: float | None = None) -> bool:
        return self.take(key, rate, burst) == 0.0

    def forget_full(self, rate: float | None = None, burst: float | None = None) -> None:
        """Forget the keys whose bucket has refilled: forgetting them changes nothing."""
        rate = self.rate if rate is None else rate
        burst = self.burst if burst is None else burst
        now = self.clock()
        full = [key for key, (tokens, at) in self._buckets.items() if not rate or tokens + (now - at) * rate >= burst]
        for key in full:
            del self._buckets[key]

    def clear(self) -> None:
        self._buckets.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._buckets

    def __iter__(self):
        return iter(self._buckets)

    def __len__(self) -> int:
        return len(self._buckets)
