"""Per-app request rate limit for the public HTTP API (token bucket, in process)."""

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from service.realtime import metrics
from service.realtime.ratelimit import TokenBucket

_buckets = TokenBucket()  # per app id; rate and burst (2x) from the setting at each call


def take_token(app_id: int) -> float | None:
    """Spend one request of the app's budget: None if allowed, else seconds to wait."""
    rate = settings.TABCAST["HTTP_RATE_PER_APP"]
    wait = _buckets.take(app_id, rate, rate * 2.0)
    if wait:
        metrics.limit_rejected("api_rate")
        return wait
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
