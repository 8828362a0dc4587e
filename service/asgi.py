"""ASGI entry point: HTTP goes to Django, WebSockets to the Pusher consumer."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "service.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from service.api.fast import FastPublish  # noqa: E402
from service.realtime.lifespan import LifespanMiddleware  # noqa: E402
from service.realtime.routing import websocket_application  # noqa: E402

application = LifespanMiddleware(ProtocolTypeRouter({
    "http": FastPublish(django_asgi_app),
    "websocket": websocket_application,
}))
