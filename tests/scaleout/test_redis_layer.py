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


async def until(check, what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
