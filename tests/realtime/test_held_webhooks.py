"""channel_vacated / member_removed webhooks are held back (TABCAST_WEBHOOK_LEAVE_DELAY): a
return within the delay (a page reload) sends neither them nor the occupied/added after.

Each negative check ends with a marker: a later webhook on the same path, queued after anything
the server might wrongly have sent, then the receiver must hold nothing more.
"""

import asyncio
import json
import queue
import time

import pytest

from service.realtime import signatures
from tests.support.webhooks import Receiver
from tests.scaleout.conftest import Cluster
from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient

# A return must land within DELAY of the leave; under CPU load a cross-process return (a pong,
# then a subscribe on the other process) takes a few hundred ms, so keep a wide margin.
DELAY = 1.0
HOOK_ENV = {"TABCAST_WEBHOOKS_ALLOW_PRIVATE": "1", "TABCAST_WEBHOOK_LEAVE_DELAY": str(DELAY)}


@pytest.fixture(scope="module")
def server():
    server = TabcastProcess(extra_env=HOOK_ENV).start()
    yield server
    server.stop()


@pytest.fixture
def hooked(server):
    receiver = Receiver()
    app = server.create_app("held-hooks", webhook_url=receiver.url)
    yield app, receiver
    receiver.server.shutdown()


async def next_event(receiver: Receiver, timeout: float = 10) -> dict:
    """The next webhook event (waited for off the event loop, so the server's clients keep reading)."""
    return (await asyncio.to_thread(receiver.next_event, timeout))[2]


async def assert_nothing_more(receiver: Receiver, client: RawClient, channel: str = "after") -> None:
    """Marker: occupy a new channel; its webhook must be the next and last one."""
    await client.subscribe(channel)
    assert await next_event(receiver) == {"name": "channel_occupied", "channel": channel}
    try:
        extra = receiver.requests.get_nowait()
    except queue.Empty:
        return
    raise AssertionError(f"unexpected webhook {json.loads(extra[1])}")


async def unsubscribe(client: RawClient, channel: str) -> None:
    await client.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})


async def leave_handled(client: RawClient, channel: str) -> None:
    """Unsubscribe and wait until the server has handled it (its count and hold mark are written):
    a socket's frames are handled in order, so its pong comes after. Needed before the return
    happens on another socket or process, which would otherwise race the leave (the narrow race
    held_webhooks.py documents: the return then finds no mark and sends channel_occupied)."""
    await unsubscribe(client, channel)
    await client.ping_pong()


def presence_auth(app: dict, socket_id: str, channel: str, user_id) -> dict:
    channel_data = json.dumps({"user_id": user_id, "user_info": {}})
    signature = signatures.sign(app["secret"], signatures.channel_auth_message(socket_id, channel, channel_data))
    return {"auth": f"{app['key']}:{signature}", "channel_data": channel_data}


async def test_quick_unsubscribe_and_resubscribe_sends_no_webhooks(server, hooked):
    app, receiver = hooked
    client = await RawClient.established(server, app["key"])
    await client.subscribe("room")
    assert await next_event(receiver) == {"name": "channel_occupied", "channel": "room"}
    await client.subscribe("marker")
    assert await next_event(receiver) == {"name": "channel_occupied", "channel": "marker"}

    await unsubscribe(client, "room")  # a page reload: leave and come back at once
    assert (await client.subscribe("room"))["event"] == "pusher_internal:subscription_succeeded"
    await unsubscribe(client, "marker")  # a real leave, held after the room's: decided after it
    assert await next_event(receiver) == {"name": "channel_vacated", "channel": "marker"}
    await assert_nothing_more(receiver, client)
    await client.close()


async def test_a_real_leave_sends_vacated_after_the_delay(server, hooked):
    app, receiver = hooked
    client = await RawClient.established(server, app["key"])
    await client.subscribe("room")
    assert await next_event(receiver) == {"name": "channel_occupied", "channel": "room"}
    left = time.monotonic()
    await unsubscribe(client, "room")
    assert await next_event(receiver) == {"name": "channel_vacated", "channel": "room"}
    assert time.monotonic() - left >= DELAY - 0.05  # held back (a lower bound: safe on a busy machine)
    # And a return after the delay is a new occupation.
    await client.subscribe("room")
    assert await next_event(receiver) == {"name": "channel_occupied", "channel": "room"}
    await client.close()  # a disconnect leaves its channels the same way
    assert await next_event(receiver) == {"name": "channel_vacated", "channel": "room"}


async def test_member_leaving_and_rejoining_within_the_delay_sends_no_member_webhooks(server, hooked):
    app, receiver = hooked
    channel = "presence-held"
    stays = await RawClient.established(server, app["key"])
    await stays.subscribe(channel, **presence_auth(app, stays.socket_id, channel, "1"))
    assert [await next_event(receiver) for _ in range(2)] == [
        {"name": "channel_occupied", "channel": channel},
        {"name": "member_added", "channel": channel, "user_id": "1"}]
    reloads = await RawClient.established(server, app["key"])
    await reloads.subscribe(channel, **presence_auth(app, reloads.socket_id, channel, 2))
    assert await next_event(receiver) == {"name": "member_added", "channel": channel, "user_id": 2}

    await unsubscribe(reloads, channel)  # user 2 reloads its page...
    again = await reloads.subscribe(channel, **presence_auth(app, reloads.socket_id, channel, 2))
    assert again["event"] == "pusher_internal:subscription_succeeded"
    left = time.monotonic()
    await unsubscribe(reloads, channel)  # ...then really leaves: one member_removed, after the delay
    assert await next_event(receiver) == {"name": "member_removed", "channel": channel, "user_id": 2}
    assert time.monotonic() - left >= DELAY - 0.05
    await assert_nothing_more(receiver, stays)
    await stays.close()
    await reloads.close()


async def test_no_delay_setting_sends_at_once():
    """TABCAST_WEBHOOK_LEAVE_DELAY=0: the old behaviour (every leave and return is sent)."""
    receiver = Receiver()
    instant = TabcastProcess(extra_env={**HOOK_ENV, "TABCAST_WEBHOOK_LEAVE_DELAY": "0"}).start()
    try:
        app = instant.create_app("instant-hooks", webhook_url=receiver.url)
        client = await RawClient.established(instant, app["key"])
        await client.subscribe("room")
        await unsubscribe(client, "room")
        await client.subscribe("room")
        assert [(await next_event(receiver))["name"] for _ in range(3)] == [
            "channel_occupied", "channel_vacated", "channel_occupied"]
        await client.close()
    finally:
        instant.stop()


@pytest.fixture(scope="module")
def cluster(redis_url):
    """Two processes on one Redis and one database, webhooks held DELAY seconds."""
    cluster = Cluster(redis_url)
    cluster.a, cluster.b = cluster.start(**HOOK_ENV), cluster.start(**HOOK_ENV)
    yield cluster
    cluster.stop()


async def test_a_return_on_another_process_cancels_the_held_vacated(cluster):
    receiver = Receiver()
    app = cluster.a.create_app("held-cluster", webhook_url=receiver.url)
    on_a = await RawClient.established(cluster.a, app["key"])
    on_b = await RawClient.established(cluster.b, app["key"])
    await on_a.subscribe("room")
    assert await next_event(receiver) == {"name": "channel_occupied", "channel": "room"}

    await leave_handled(on_a, "room")  # the page reloads, and its new socket lands on process B
    assert (await on_b.subscribe("room"))["event"] == "pusher_internal:subscription_succeeded"
    left = time.monotonic()
    await unsubscribe(on_b, "room")  # then it really leaves, on B
    assert await next_event(receiver) == {"name": "channel_vacated", "channel": "room"}
    assert time.monotonic() - left >= DELAY - 0.05
    await assert_nothing_more(receiver, on_a)  # A's expired hold sent nothing either

    # Members too: user 7 leaves on A and is back on B within the delay.
    channel = "presence-cluster"
    await on_a.subscribe(channel, **presence_auth(app, on_a.socket_id, channel, "7"))
    assert [await next_event(receiver) for _ in range(2)] == [
        {"name": "channel_occupied", "channel": channel},
        {"name": "member_added", "channel": channel, "user_id": "7"}]
    await on_b.subscribe(channel, **presence_auth(app, on_b.socket_id, channel, "8"))  # keeps it occupied
    assert await next_event(receiver) == {"name": "member_added", "channel": channel, "user_id": "8"}
    third = await RawClient.established(cluster.b, app["key"])  # the reloaded page's socket, on B
    await leave_handled(on_a, channel)
    await third.subscribe(channel, **presence_auth(app, third.socket_id, channel, "7"))
    left = time.monotonic()
    await unsubscribe(third, channel)  # a real leave, held after A's: decided after it
    assert await next_event(receiver) == {"name": "member_removed", "channel": channel, "user_id": "7"}
    assert time.monotonic() - left >= DELAY - 0.05
    await assert_nothing_more(receiver, third, "after-members")
    for client in (on_a, on_b, third):
        await client.close()
