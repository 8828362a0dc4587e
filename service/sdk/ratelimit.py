"""A small in-process token bucket for the demo's public endpoints."""

import time


class TokenBucket:
    """Allows ``rate`` requests per second per key, in bursts of up to ``burst``."""

    MAX_KEYS = 10_000  # forget everyone at once rather than grow without bound

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.buckets: dict[object, tuple[float, float]] = {}

    def allow(self, key: object) -> bool:
        now = time.monotonic()
        if len(self.buckets) > self.MAX_KEYS:
            self.buckets.clear()
        tokens, last = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return False
        self.buckets[key] = (tokens - 1, now)
        return True
