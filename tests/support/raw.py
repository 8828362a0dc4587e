"""A raw Pusher-protocol WebSocket client, for frames no real library would send."""

import asyncio
import json

import websockets


class RawClient:
    def __init__(self, ws):
        self.ws = ws
        self.socket_id: str | None = None
        self.activity_timeout: int | None = None

    @classmethod
    async def connect(cls, server, key: str, query: str = "?protocol=7", **kwargs) -> "RawClient":
        ws = await websockets.connect(f"{server.ws}/app/{key}{query}", **kwargs)
        return cls(ws)

    @classmethod
    async def established(cls, server, key: str, **kwargs) -> "RawClient":
        client = await cls.connect(server, key, **kwargs)
        frame = await client.recv()
        assert frame["event"] == "pusher:connection_established", frame
        data = json.loads(frame["data"])
        client.socket_id, client.activity_timeout = data["socket_id"], data["activity_timeout"]
        return client

    async def send(self, frame) -> None:
        await self.ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    async def recv(self, timeout: float = 5) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def recv_event(self, event: str, timeout: float = 5) -> dict:
        """Skip frames until one with this event name arrives."""
        async def find():
            while True:
                frame = json.loads(await self.ws.recv())
                if frame.get("event") == event:
                    return frame
        return await asyncio.wait_for(find(), timeout)

    async def subscribe(self, channel: str, **data) -> dict:
        await self.send({"event": "pusher:subscribe", "data": {"channel": channel, **data}})
        return await self.recv()

    async def closed(self, timeout: float = 5) -> tuple[int, str]:
        """Wait for the server to close the socket; returns (code, reason)."""
        async def drain():
            try:
                while True:
                    await self.ws.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""
        return await asyncio.wait_for(drain(), timeout)

    async def ping_pong(self) -> None:
        """Round-trip a pusher:ping: proves the connection still serves (and orders prior frames)."""
        await self.send({"event": "pusher:ping", "data": {}})
        assert (await self.recv_event("pusher:pong"))["data"] == {}

    async def close(self) -> None:
        await self.ws.close()


async def channel_frames(client: RawClient, channel: str, count: int, timeout: float = 10) -> list[dict]:
    """The next ``count`` frames of ``channel`` (skipping pongs and other channels' frames)."""
    frames = []
    async with asyncio.timeout(timeout):
        while len(frames) < count:
            frame = await client.recv(timeout)
            if frame.get("channel") == channel:
                frames.append(frame)
    return frames


async def subscribed(server, key: str, channel: str, **data) -> tuple[RawClient, dict]:
    """A new socket subscribed to ``channel`` (``data``: auth, position...); (client, subscription_succeeded)."""
    client = await RawClient.established(server, key)
    answer = await client.subscribe(channel, **data)
    assert answer["event"] == "pusher_internal:subscription_succeeded", answer
    return client, answer


def data_of(frame: dict):
    """Server frames carry data as a JSON string (Pusher's double encoding)."""
    return json.loads(frame["data"])
