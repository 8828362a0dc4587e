"""ASGI lifespan: start the node with the server, and on shutdown close sockets with 4200."""

import logging

from django.dispatch import Signal

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
