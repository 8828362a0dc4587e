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

from service.realtime.redis_layer import PipelinedPubSubChannelLayer
from tests.support.processes import free_port

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
