"""Recovery's bad days on Redis (docs/recovery.md): a message answered 200 but lost between Redis and
a process, a process killed under its sockets, Redis restarted with its history gone.

Each ends with every message delivered, or with `tabcast:resumed` `recovered: false` said first:
never a silent loss.
"""

import asyncio

import httpx
import msgpack
import pytest
import redis

from service.realtime import protocol, streams
from service.realtime.channel_names import group_name
from service.realtime.node import PUBLISH
from tests.support.raw import RawClient, channel_frames, data_of, subscribed

from .conftest import on


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(base_url=f"http://{app['host']}:{app['port']}", auth=(app["key"], app["secret"]),
                                 timeout=10) as client:
        yield client


async def publish(http, channel: str, data: str) -> None:
    response = await http.post("/publish", json={"channels": [channel], "event": "e", "data": data})
    assert response.status_code == 200, response.text






def record_without_delivering(server, app, channel: str, data: str, size: int = 100) -> None:
    """What the re-join window did: the message is in the channel's history (its publish was
    answered 200) but its PUBLISH reached no process."""
    client = redis.Redis.from_url(server.env["REDIS_URL"])
    group = group_name(app["app_id"], channel)
    message = msgpack.packb({"type": PUBLISH, "app": app["app_id"], "channel": channel, "except": None})
    frame = protocol.event("e", channel, data)
    stream = streams.Stream(group, size, 120)
    client.eval(streams.APPEND_AND_PUBLISH, 2,
                *streams.fixed_args(server.env["TABCAST_REDIS_PREFIX"], group, stream, "PUBLISH", "nobody-listens"),
                frame[:-1], streams.script_message(message))
    client.close()


async def test_a_message_recorded_but_never_delivered_arrives_before_the_next_one(cluster, app, http):
    client, _ = await subscribed(cluster.a, app["key"], "orders")
    await publish(http, "orders", "first")
    record_without_delivering(cluster.a, app, "orders", "lost-in-transit")
    await publish(http, "orders", "third")
    frames = await channel_frames(client, "orders", 3)
    assert [f["data"] for f in frames] == ["first", "lost-in-transit", "third"]
    assert [f["position"].split(":")[1] for f in frames] == ["1", "2", "3"]
    await client.ping_pong()  # and no tabcast:resumed came: nothing was lost
    await client.close()


async def test_a_gap_the_history_cannot_fill_is_told_before_the_next_message(cluster, app, http):
    cluster.a.update_app(app["app_id"], history_size=1)
    client, _ = await subscribed(cluster.a, app["key"], "orders")
    await publish(http, "orders", "first")
    record_without_delivering(cluster.a, app, "orders", "gone-1", size=1)
    record_without_delivering(cluster.a, app, "orders", "gone-2", size=1)
    await publish(http, "orders", "fourth")
    frames = await channel_frames(client, "orders", 3)
    assert frames[0]["data"] == "first"
    assert frames[1]["event"] == "tabcast:resumed"
    assert data_of(frames[1]) == {"recovered": False, "missed": 0, "reason": "too_old"}
    assert frames[2]["data"] == "fourth"
    await client.close()


async def test_a_socket_whose_process_is_killed_resumes_on_another_and_misses_nothing(cluster, app):
    """kill -9 of the socket's process while publishing continues through the other one."""
    b = on(app, cluster.b)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{b['port']}", auth=(app["key"], app["secret"]),
                                 timeout=10) as http:
        victim = cluster.start()
        client, answer = await subscribed(victim, app["key"], "feed")
        for n in range(10):
            await publish(http, "feed", str(n))
        frames = await channel_frames(client, "feed", 10)
        victim.kill()
        for n in range(10, 60):
            await publish(http, "feed", str(n))
        resumed, again = await subscribed(cluster.b, app["key"], "feed", position=frames[-1]["position"])
        replay = await channel_frames(resumed, "feed", 51)
        assert [f["data"] for f in replay[:50]] == [str(n) for n in range(10, 60)]
        assert data_of(replay[50]) == {"recovered": True, "missed": 50}
        await resumed.close()


async def test_redis_restarted_without_its_history_is_never_a_silent_loss(restartable):
    app = restartable.a.create_app("recovery")
    async with httpx.AsyncClient(base_url=restartable.b.http, auth=(app["key"], app["secret"]), timeout=10) as http:
        live, _ = await subscribed(restartable.a, app["key"], "feed")
        await publish(http, "feed", "before")
        [before] = await channel_frames(live, "feed", 1)
        away, _ = await subscribed(restartable.a, app["key"], "feed")
        await away.close()

        restartable.redis.stop()
        restartable.redis.start()  # empty: no persistence

        async def published_after() -> bool:
            response = await http.post("/publish", json={"channels": ["feed"], "event": "e", "data": "after"})
            return response.status_code == 200

        async with asyncio.timeout(30):
            while not await published_after():  # 503 until delivery is proven again
                await asyncio.sleep(0.1)
        # The live socket is told before the first message of the new stream.
        told, after = await channel_frames(live, "feed", 2)
        assert told["event"] == "tabcast:resumed"
        assert data_of(told) == {"recovered": False, "missed": 0, "reason": "epoch_changed"}
        assert after["data"] == "after" and after["position"].split(":")[0] != before["position"].split(":")[0]
        # A socket resuming from the old stream is told too.
        back, _ = await subscribed(restartable.a, app["key"], "feed", position=before["position"])
        [resumed] = await channel_frames(back, "feed", 1)
        assert data_of(resumed) == {"recovered": False, "missed": 0, "reason": "epoch_changed"}
        await live.close(), await back.close()
