"""The pipelined pub/sub layer on a real Redis: every publish arrives, in order, and fails loudly.

Two layer instances stand for two processes. Publishes made concurrently share pipelines;
what a publisher relies on is that each one reaches every subscribed process exactly once,
in the order it was made, and that an unreachable Redis fails each publish (the HTTP API turns
that into 503) instead of losing it silently.
"""

import asyncio
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from service.realtime.broker import DeliveryUnavailable, LayerBroker
from service.realtime.outage import Outage
from service.realtime.redis_layer import PipelinedPubSubChannelLayer
from service.realtime.streams import Position, Stream
from tests.support.processes import RedisProcess, free_port

pytestmark = pytest.mark.redis


def layer(url: str, prefix: str) -> PipelinedPubSubChannelLayer:
    return PipelinedPubSubChannelLayer(hosts=[{"address": url, "socket_timeout": None}], prefix=prefix)


async def test_concurrent_publishes_reach_another_process_once_each_and_in_order(redis_url):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    sender, receiver = layer(redis_url, prefix), layer(redis_url, prefix)
    channel = await receiver.new_channel("specific.test.")
    await receiver.group_add("app-1.news", channel)
    try:
        # Four publishers, 250 messages each, all in flight at once: they share pipelines.
        async def publisher(name: str) -> None:
            for seq in range(250):
                await sender.group_send("app-1.news", {"type": "publish", "by": name, "seq": seq})

        await asyncio.gather(*(publisher(name) for name in "abcd"))
        received = [await asyncio.wait_for(receiver.receive(channel), 10) for _ in range(1000)]
        for name in "abcd":
            assert [m["seq"] for m in received if m["by"] == name] == list(range(250))
    finally:
        await sender.flush()
        await receiver.flush()


async def test_every_waiting_publish_fails_when_redis_is_unreachable():
    unreachable = PipelinedPubSubChannelLayer(hosts=[{"address": f"redis://127.0.0.1:{free_port()}",
                                                      "socket_connect_timeout": 1}])
    outcomes = await asyncio.gather(*(unreachable.group_send("app-1.news", {"type": "publish", "seq": seq})
                                      for seq in range(20)), return_exceptions=True)
    assert all(isinstance(outcome, RedisConnectionError) for outcome in outcomes), outcomes
    # Still usable afterwards: the next publish tries again (and fails the same way) instead of hanging.
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(unreachable.group_send("app-1.news", {"type": "publish"}), 10)
    await unreachable.flush()


async def test_after_a_redis_restart_publishes_wait_until_the_other_processes_are_subscribed_again():
    """Two brokers on their own layers stand for two processes; A is slow to resubscribe after a
    Redis restart (a busy process: its subscriber connection is not read for a while). B's own
    subscriptions come back at once, but a publish from B answered meanwhile would miss A's
    sockets: B refuses publishes (HTTP 503) until A is subscribed again, then delivers."""
    redis = RedisProcess().start()
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    got_on_a: list[dict] = []
    a = LayerBroker(layer(redis.url, prefix), got_on_a.append, outage=Outage("test"))
    b = LayerBroker(layer(redis.url, prefix), lambda message: None, outage=Outage("test"))
    try:
        await a.start()
        await b.start()
        await a.join("app-1.news")
        await until(lambda: b._peers == 2, "B to see both processes subscribed")  # noqa: SLF001
        await b.send("app-1.news", {"type": "tc.publish", "n": 0})
        await until(lambda: {"type": "tc.publish", "n": 0} in got_on_a, "a publish to reach A")

        shard_a = a.layer._get_layer()._shards[0]  # noqa: SLF001
        shard_a._receive_task.cancel()  # noqa: SLF001 - A stops reading its subscriber connection
        redis.proc.kill()
        redis.proc.wait(5)
        await until(lambda: not b.healthy, "B to notice the outage")
        redis.start()  # empty: every subscription is gone
        with pytest.raises(DeliveryUnavailable):
            await b.send("app-1.news", {"type": "tc.publish", "n": -1})
        await asyncio.sleep(1.5)  # B's own delivery works again within ~0.2 s; A is still not subscribed
        assert not b.healthy
        with pytest.raises(DeliveryUnavailable):
            await b.send("app-1.news", {"type": "tc.publish", "n": -2})

        shard_a._receive_task = None  # noqa: SLF001 - A reads again: it reconnects and resubscribes
        shard_a._ensure_receiver()  # noqa: SLF001
        await until(lambda: b.healthy, "B to accept publishes again")
        await b.send("app-1.news", {"type": "tc.publish", "n": 1})
        await until(lambda: {"type": "tc.publish", "n": 1} in got_on_a, "a publish from B to reach A again")
    finally:
        await a.stop()
        await b.stop()
        redis.stop()


class CuttingProxy:
    """A TCP proxy to Redis that, once armed, forwards the next request carrying ``marker`` and
    then drops that connection before Redis's reply comes back: Redis ran the command, the
    client never heard."""

    def __init__(self, redis_url: str, marker: bytes):
        self.target = redis_url.rsplit(":", 1)[1].split("/")[0]
        self.marker, self.armed, self.cut = marker, False, asyncio.Event()
        self.server = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _serve(self, client_reader, client_writer) -> None:
        redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", int(self.target))

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                redis_writer.write(data)
                if self.armed and self.marker in data:
                    self.armed = False
                    await redis_writer.drain()
                    client_writer.transport.abort()  # the reply will have nowhere to go
                    self.cut.set()
                    return

        async def downstream() -> None:
            while data := await redis_reader.read(65536):
                if client_writer.is_closing():
                    return
                client_writer.write(data)

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            pass
        finally:
            redis_writer.close()
            client_writer.close()


async def test_a_recorded_publish_cut_off_from_its_reply_fails_once_and_is_never_sent_twice(redis_url):
    """Redis runs the history script, then the connection drops before the reply arrives. The
    publish fails (the HTTP API answers 503; the publisher may retry), Redis ran it exactly once
    (one history entry, one delivery: the layer never sends a batch again by itself), and the
    next publish goes out on a fresh connection."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    group = "app-1.cut"
    stream = Stream(group, 100, 60)
    proxy = CuttingProxy(redis_url, b"EVALSHA")
    async with proxy as proxied:
        sender, receiver = layer(proxied, prefix), layer(redis_url, prefix)
        channel = await receiver.new_channel("specific.test.")
        await receiver.group_add(group, channel)
        try:
            def publish(n: int) -> dict:
                return {"type": "tc.publish", "frame": f'{{"event":"e","channel":"cut","data":"{n}"}}'}

            assert await sender.group_send(group, publish(1), stream) == 1
            proxy.armed = True  # the next recorded publish's reply is cut off
            with pytest.raises((RedisConnectionError, ConnectionError)):
                await sender.group_send(group, publish(2), stream)
            assert proxy.cut.is_set()
            assert await sender.group_send(group, publish(3), stream) == 1  # a new connection serves the next
            got = [await asyncio.wait_for(receiver.receive(channel), 10) for _ in range(3)]
            assert [m["offset"] for m in got] == [1, 2, 3]
            assert [m["frame"].split('"data":"')[1][0] for m in got] == ["1", "2", "3"]  # 2 once: Redis ran it
            page = await receiver.read_stream(group, Position(got[0]["epoch"], 0), 10)
            assert [offset for offset, _ in page.frames] == [1, 2, 3]
        finally:
            await sender.flush()
            await receiver.flush()


async def until(check, what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
