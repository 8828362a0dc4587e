"""Carries publishes between processes through Channels groups, one membership per process.

Each process owns one channel-layer channel. It joins the group of an (app, channel) when
its first local socket subscribes and leaves when the last one goes; a publish is one
``group_send`` of the pre-encoded frame, and one pump task per process receives it and
hands it to the node, which fans it out to local sockets. With the in-process layer this is
the embedded default; with channels_redis pub/sub a publish is one Redis PUBLISH that
reaches exactly the processes with subscribers.
"""

import asyncio
import logging
from collections.abc import Callable

from .channel_names import CONTROL_GROUP

log = logging.getLogger(__name__)


class LayerBroker:
    def __init__(self, layer, on_message: Callable[[dict], None]):
        self.layer = layer
        self.on_message = on_message
        self.channel_name: str | None = None
        self._pump_task: asyncio.Task | None = None
        self.groups: set[str] = set()  # groups this process has joined (besides the control group)

    async def start(self) -> None:
        self.channel_name = await self.layer.new_channel("specific.tabcast.")
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())
        await self.layer.group_add(CONTROL_GROUP, self.channel_name)

    async def stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            self._pump_task = None

    async def join(self, group: str) -> None:
        """Make this process receive the group's messages (called once per local first subscriber)."""
        await self.layer.group_add(group, self.channel_name)
        self.groups.add(group)

    async def leave(self, group: str) -> None:
        self.groups.discard(group)
        await self.layer.group_discard(group, self.channel_name)

    async def send(self, group: str, message: dict) -> None:
        """Deliver to every process in the group (raises if the layer is unreachable)."""
        await self.layer.group_send(group, message)

    async def _pump(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep serving; the layer reconnects by itself
                log.exception("channel layer receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            try:
                self.on_message(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop fan-out
                log.exception("failed to handle %s", message.get("type"))
