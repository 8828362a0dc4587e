"""A small per-IP, fixed-window rate limiter for the public auth endpoints, kept in Django's cache."""

import math
import time
from functools import wraps

from django.core.cache import cache
from django.shortcuts import render

# scope -> (attempts, window in seconds). Only POSTs count: loading a form is free.
LIMITS = {
    "login": (10, 300),
    "signup": (10, 3600),
    "password_reset": (5, 3600),
}


def client_ip(request) -> str:
    """The peer address; behind a proxy the server must set REMOTE_ADDR from a trusted header."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def hit(scope: str, ip: str) -> int:
    """Count one attempt; return 0 if allowed, else the seconds until the window resets."""
    limit, window = LIMITS[scope]
    now = time.time()
    bucket = int(now // window)
    key = f"tabcast:ratelimit:{scope}:{ip}:{bucket}"
    # add() is a no-op when the key exists, so concurrent first hits do not reset the count.
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=window)
        count = 1
    if count <= limit:
        return 0
    return max(1, math.ceil((bucket + 1) * window - now))


def rate_limited(scope: str):
    """Decorate a view so POSTs over ``LIMITS[scope]`` per IP get a 429 page with Retry-After."""
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST":
                retry_after = hit(scope, client_ip(request))
                if retry_after:
                    response = render(request, "tenants/rate_limited.html",
                                      {"retry_minutes": math.ceil(retry_after / 60)}, status=429)
                    response["Retry-After"] = str(retry_after)
                    return response
            return view(request, *args, **kwargs)
        return wrapper
    return decorator
