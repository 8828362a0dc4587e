"""ASGI app of the naive baseline: /sub subscribes, /pub publishes."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import Publisher, Subscriber  # noqa: E402

application = ProtocolTypeRouter({
    "websocket": URLRouter([
        path("sub", Subscriber.as_asgi()),
        path("pub", Publisher.as_asgi()),
    ]),
})
