"""GET /metrics: the server's metrics in the Prometheus text format (prometheus_client), for operators.

Served at the ASGI edge (``service/asgi.py``), before Django, so a scraper reaches it by the
pod's or container's address (not a host name in ``TABCAST_ALLOWED_HOSTS``) and over plain HTTP
even where the dashboard redirects to HTTPS; what guards it is its own rule: a bearer token
(``TABCAST_METRICS_TOKEN``), else loopback clients only.

With ``serve --workers N`` every worker answers for the whole server (multiprocess mode;
service/realtime/metrics.py, docs/metrics.md).
"""

import hmac
import time

from django.conf import settings

from service.realtime import metrics as realtime_metrics
from service.realtime.node import current_node

PATH = "/metrics"
LOOPBACK = {"127.0.0.1", "::1"}
FORBIDDEN = b"Forbidden: set TABCAST_METRICS_TOKEN and send it as a Bearer token\n"


def _allowed(scope) -> bool:
    token = settings.TABCAST["METRICS_TOKEN"]
    if token:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        given = header.decode("latin-1").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    return (scope.get("client") or ("",))[0] in LOOPBACK


async def serve(scope, receive, send) -> None:
    """The whole answer to ``GET /metrics`` (runs on the event loop: reads the hub without racing it)."""
    started = time.perf_counter()
    if scope["method"] not in ("GET", "HEAD"):
        status, body, content_type = 405, b"Method not allowed: GET /metrics\n", b"text/plain"
    elif not _allowed(scope):
        status, body, content_type = 403, FORBIDDEN, b"text/plain"
    else:
        node = current_node()
        if node is not None:
            realtime_metrics.sample(node)  # this worker's gauges as of now; the others' are <= 1 s old
        status, body, content_type = 200, realtime_metrics.render(), realtime_metrics.CONTENT_TYPE.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body)),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
    realtime_metrics.http_request_done("metrics", status, started)
