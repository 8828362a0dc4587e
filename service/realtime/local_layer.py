"""A lean in-process Channels layer for the embedded (single-process) mode.

Channels' ``InMemoryChannelLayer`` deep-copies every message, scans every group on each
send and receive, drops a member 24 h after it joined (``group_expiry``) and caps each
channel at 100 queued messages. Tabcast's process channel receives *every* publish for as
long as the process lives, so none of that fits. This layer keeps the same API (including
groups) with none of those costs; it carries messages only within one process.
"""

import asyncio
import uuid

from channels.layers import BaseChannelLayer

from .streams import HistoryPage, MemoryStreams, Position, Stream


class LocalChannelLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(self, **kwargs):
        super().__init__(expiry=0, capacity=0, **kwargs)
        self._queues: dict[str, asyncio.Queue] = {}
        self._groups: dict[str, set[str]] = {}
        self.streams = MemoryStreams()  # channel history (streams.py): the layer appends as it sends

    async def new_channel(self, prefix: str = "specific.") -> str:
        name = f"{prefix}local!{uuid.uuid4().hex}"
        self._queues[name] = asyncio.Queue()
        return name

    async def send(self, channel: str, message: dict) -> None:
        self.require_valid_channel_name(channel)
        queue = self._queues.get(channel)
        if queue is not None:
            queue.put_nowait(message)

    async def receive(self, channel: str) -> dict:
        queue = self._queues.get(channel)
        if queue is None:
            queue = self._queues[channel] = asyncio.Queue()
        return await queue.get()

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self._groups.setdefault(group, set()).add(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        members = self._groups.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._groups[group]

    async def group_send(self, group: str, message: dict, stream: Stream | None = None) -> None:
        """Send to the group's channels; with ``stream``, record the frame and send it positioned.

        No await before the queues are filled: a channel's messages go out in offset order."""
        self.require_valid_group_name(group)
        if stream is not None:  # the node made this message for this one send: completed in place
            message["frame"], message["epoch"], message["offset"] = self.streams.append(stream, message["frame"])
        for channel in self._groups.get(group, ()):
            queue = self._queues.get(channel)
            if queue is not None:
                queue.put_nowait(message)

    async def read_stream(self, group: str, since: Position | None, limit: int) -> HistoryPage:
        return self.streams.read(group, since, limit)

    async def flush(self) -> None:
        self._queues.clear()
        self._groups.clear()
