"""ASGI entry point: HTTP goes to Django, WebSockets to the Pusher consumer."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "service.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from service.api import metrics as metrics_endpoint  # noqa: E402
from service.api.fast import FastPublish  # noqa: E402
from service.logs import RequestId  # noqa: E402
from service.realtime.lifespan import LifespanMiddleware  # noqa: E402
from service.realtime.metrics import HttpMetrics  # noqa: E402
from service.realtime.routing import websocket_application  # noqa: E402

# FastPublish answers publishes on the event loop (with their request id and /metrics counts);
# the rest goes to Django, with a request id (X-Request-Id, for the log lines: service/logs.py)
# and counted by HttpMetrics. HTTP only: nothing is kept per WebSocket.
publish_or_django = FastPublish(RequestId(HttpMetrics(django_asgi_app)))


async def http(scope, receive, send):
    if scope["path"] == metrics_endpoint.PATH:  # before Django: scrapers use the pod's address
        return await metrics_endpoint.serve(scope, receive, send)
    return await publish_or_django(scope, receive, send)


application = LifespanMiddleware(ProtocolTypeRouter({"http": http, "websocket": websocket_application}))
