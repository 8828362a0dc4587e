"""The naive design as the Channels tutorial teaches it, with stock dispatch."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

GROUP = "bench"


class Subscriber(AsyncJsonWebsocketConsumer):
    """One consumer and one group membership per socket; send_json encodes per socket."""

    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def bench_message(self, event):
        await self.send_json(event["payload"])


class Publisher(AsyncJsonWebsocketConsumer):
    """Every JSON frame received is one group_send to all subscribers."""

    async def receive_json(self, content, **kwargs):
        await self.channel_layer.group_send(GROUP, {"type": "bench.message", "payload": content})
