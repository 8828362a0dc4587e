"""Per-app request rate limit for the public HTTP API (token bucket, in process)."""

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

_buckets: dict[int, list[float]] = {}  # app id -> [tokens, last refill]


def take_token(app_id: int) -> float | None:
    """Spend one request of the app's budget: None if allowed, else seconds to wait."""
    rate = settings.TABCAST["HTTP_RATE_PER_APP"]
    now = time.monotonic()
    bucket = _buckets.setdefault(app_id, [rate * 2.0, now])
    bucket[0] = min(rate * 2.0, bucket[0] + (now - bucket[1]) * rate)
    bucket[1] = now
    if bucket[0] < 1:
        return max((1 - bucket[0]) / rate, 0.001)
    bucket[0] -= 1
    return None


class AppRateThrottle(BaseThrottle):
    """Refuses with 429 (and Retry-After) when an app exceeds HTTP_RATE_PER_APP requests/s."""

    def allow_request(self, request, view):
        if request.auth is None:
            return True
        self._wait = take_token(request.auth.id)
        return self._wait is None

    def wait(self):
        return self._wait
