"""Per-app request rate limit for the public HTTP API (token bucket, in process)."""

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle


class AppRateThrottle(BaseThrottle):
    """Refuses with 429 (and Retry-After) when an app exceeds HTTP_RATE_PER_APP requests/s."""

    buckets: dict[int, list[float]] = {}  # app id -> [tokens, last refill]

    def allow_request(self, request, view):
        app = request.auth
        if app is None:
            return True
        rate = settings.TABCAST["HTTP_RATE_PER_APP"]
        now = time.monotonic()
        bucket = self.buckets.setdefault(app.id, [rate * 2.0, now])
        bucket[0] = min(rate * 2.0, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if bucket[0] < 1:
            self._wait = (1 - bucket[0]) / rate
            return False
        bucket[0] -= 1
        return True

    def wait(self):
        return max(self._wait, 0.001)
