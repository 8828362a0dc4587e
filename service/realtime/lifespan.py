"""ASGI lifespan: start the node with the server, and on shutdown close sockets with 4200.

While the node drains (a deploy, see docs/deploy.md), HTTP requests are still served, each
answered with ``Connection: close`` so keep-alive clients (publishers, proxies) open their next
connection elsewhere after a complete answer, never on a connection closed under them; and
``/healthz`` answers 503 "draining" so a load balancer stops sending traffic here.
"""

import json
import logging

from django.dispatch import Signal

from . import metrics
from .node import current_node, get_node

log = logging.getLogger(__name__)

# Sent once the server's node runs (``node=``); receivers are sync and may start tasks on
# ``node.loop``. Lets other apps (billing's metering) hook in without realtime importing them.
node_started = Signal()


class LifespanMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            if scope["type"] == "http" and _draining():
                return await self._http_while_draining(scope, receive, send)
            return await self.app(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    node_started.send(sender=LifespanMiddleware, node=await get_node())
                except Exception as exc:  # noqa: BLE001 - report to the server, which exits
                    log.exception("node failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                node = current_node()
                if node is not None:
                    await node.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http_while_draining(self, scope, receive, send):
        if scope["path"] == "/healthz":
            body = json.dumps({"status": "draining"}).encode()
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"), (b"connection", b"close"), (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": body})
            metrics.HTTP_REQUESTS.labels("healthz", "503").inc()  # answered before routing (HttpMetrics)
            return None

        async def send_closing(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        return await self.app(scope, receive, send_closing)


def _draining() -> bool:
    node = current_node()
    return node is not None and not node.accepting
