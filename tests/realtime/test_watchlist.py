"""Watchlist events: a signed-in user's ``user_data.watchlist`` ids, reported online/offline
(pusher-js ``pusher.user.watchlist.bind('online' | 'offline', ...)``), in one process and across
processes (Redis), including a process that dies.

Negative checks (no event for a second connection, nor for closing one of two) are followed by
a marker: a later watchlist event on the same path, which must be the next one seen.
"""

import asyncio
import json

import pytest

from service.realtime import signatures
from tests.scaleout.conftest import Cluster
from tests.support.clients import PusherJs
from tests.support.raw import RawClient


async def signed_in(server, app: dict, user: dict) -> RawClient:
    """A raw socket signed in as ``user`` (its user_data), after pusher:signin_success."""
    client = await RawClient.established(server, app["key"])
    user_data = json.dumps(user)
    auth = signatures.sign(app["secret"], signatures.user_auth_message(client.socket_id, user_data))
    await client.send({"event": "pusher:signin", "data": {"auth": f"{app['key']}:{auth}", "user_data": user_data}})
    await client.recv_event("pusher:signin_success")
    return client


async def watchlist_event(client: RawClient, timeout: float = 5) -> list[dict]:
    frame = await client.recv_event("pusher_internal:watchlist_events", timeout)
    assert "channel" not in frame
    return frame["data"]["events"]


async def watch(pusherjs: PusherJs, user_id: str, watchlist: list) -> PusherJs:
    pusherjs.send("signin", user={"id": user_id, "watchlist": watchlist})
    await asyncio.to_thread(pusherjs.wait_for, type="signed_in")
    return pusherjs


async def seen(watcher: PusherJs, event: str) -> list:
    """The user ids of the next pusher-js watchlist ``event`` (waited for off the event loop)."""
    message = await asyncio.to_thread(watcher.wait_for, 10, type="watchlist", event=event)
    assert message["data"]["name"] == event
    return message["data"]["user_ids"]


async def signin_with_pusherjs(client: PusherJs, user_id: str) -> None:
    client.send("signin", user={"id": user_id})
    await asyncio.to_thread(client.wait_for, type="signed_in")


async def test_watched_users_online_and_offline_with_pusher_js(tabcast, app, pusherjs):
    carol = await signed_in(tabcast, app, {"id": "carol"})
    watcher = await watch(pusherjs(app).connected(), "w", ["bob", "carol"])
    # First the current status, then each change.
    assert await seen(watcher, "online") == ["carol"]
    assert await seen(watcher, "offline") == ["bob"]

    bob = await signed_in(tabcast, app, {"id": "bob"})
    assert await seen(watcher, "online") == ["bob"]
    bob_again = pusherjs(app).connected()  # a second connection of bob: he was online already
    await signin_with_pusherjs(bob_again, "bob")
    await bob.close()  # one of his two connections: still online
    await carol.close()  # marker: the next event must be carol's
    assert await seen(watcher, "offline") == ["carol"]
    watcher.assert_none_seen(type="watchlist")

    bob_again.send("disconnect")  # his last connection
    assert await seen(watcher, "offline") == ["bob"]
    # Back online: the raw client that watches sees the wire format itself.
    raw_watcher = await signed_in(tabcast, app, {"id": "w2", "watchlist": ["bob", 42]})
    assert await watchlist_event(raw_watcher) == [{"name": "offline", "user_ids": ["bob", "42"]}]
    numeric = await signed_in(tabcast, app, {"id": "42"})
    assert await watchlist_event(raw_watcher) == [{"name": "online", "user_ids": ["42"]}]
    await numeric.close()
    assert await watchlist_event(raw_watcher) == [{"name": "offline", "user_ids": ["42"]}]
    await raw_watcher.close()


async def test_signin_without_a_watchlist_gets_no_watchlist_events(tabcast, app):
    client = await signed_in(tabcast, app, {"id": "plain"})
    other = await signed_in(tabcast, app, {"id": "marker", "watchlist": ["plain"]})
    assert await watchlist_event(other) == [{"name": "online", "user_ids": ["plain"]}]
    # A pong orders every frame sent to client before it: none may be a watchlist event.
    await client.send({"event": "pusher:ping", "data": {}})
    frames = [await client.recv()]
    while frames[-1]["event"] != "pusher:pong":
        frames.append(await client.recv())
    assert [f["event"] for f in frames] == ["pusher:pong"]
    await client.close()
    await other.close()


async def test_a_watchlist_over_100_ids_keeps_the_first_100_with_error_4302(tabcast, app):
    ids = [f"user-{n}" for n in range(105)]
    client = await signed_in(tabcast, app, {"id": "greedy", "watchlist": ids})
    assert await watchlist_event(client) == [{"name": "offline", "user_ids": ids[:100]}]
    error = await client.recv_event("pusher:error")
    assert error["data"]["code"] == 4302
    last = await signed_in(tabcast, app, {"id": "user-99"})
    assert await watchlist_event(client) == [{"name": "online", "user_ids": ["user-99"]}]
    beyond = await signed_in(tabcast, app, {"id": "user-100"})  # not watched: no event; marker next
    await last.close()
    assert await watchlist_event(client) == [{"name": "offline", "user_ids": ["user-99"]}]
    for c in (client, beyond):
        await c.close()


async def test_signing_in_again_as_another_user_takes_the_first_offline(tabcast, app):
    watcher = await signed_in(tabcast, app, {"id": "w", "watchlist": ["first", "second"]})
    assert await watchlist_event(watcher) == [{"name": "offline", "user_ids": ["first", "second"]}]
    client = await signed_in(tabcast, app, {"id": "first"})
    assert await watchlist_event(watcher) == [{"name": "online", "user_ids": ["first"]}]
    user_data = json.dumps({"id": "second"})
    auth = signatures.sign(app["secret"], signatures.user_auth_message(client.socket_id, user_data))
    await client.send({"event": "pusher:signin", "data": {"auth": f"{app['key']}:{auth}", "user_data": user_data}})
    assert await watchlist_event(watcher) == [{"name": "offline", "user_ids": ["first"]}]
    assert await watchlist_event(watcher) == [{"name": "online", "user_ids": ["second"]}]
    for c in (client, watcher):
        await c.close()


@pytest.fixture(scope="module")
def cluster(redis_url):
    """Two processes (A, B) on one Redis; NODE_TTL 3 s, so a dead process's users go offline fast."""
    cluster = Cluster(redis_url)
    cluster.a, cluster.b = cluster.start(), cluster.start()
    yield cluster
    cluster.stop()


async def test_watchlist_across_processes_and_a_process_crash(cluster, pusherjs):
    app = cluster.a.create_app("watch-cluster")
    watcher = await watch(pusherjs(app).connected(), "w", ["bob", "carol"])  # on A
    assert await seen(watcher, "offline") == ["bob", "carol"]

    bob = await signed_in(cluster.b, app, {"id": "bob"})  # on B
    assert await seen(watcher, "online") == ["bob"]
    bob_on_a = await signed_in(cluster.a, app, {"id": "bob"})  # a second connection, on A
    await bob.close()  # still online (on A)
    carol = await signed_in(cluster.b, app, {"id": "carol"})  # marker
    assert await seen(watcher, "online") == ["carol"]
    watcher.assert_none_seen(type="watchlist")
    await bob_on_a.close()
    assert await seen(watcher, "offline") == ["bob"]

    # A raw watcher on B sees carol (signed in on B) online from the start.
    raw_watcher = await signed_in(cluster.b, app, {"id": "w2", "watchlist": ["carol", "dave"]})
    assert await watchlist_event(raw_watcher) == [{"name": "online", "user_ids": ["carol"]},
                                                  {"name": "offline", "user_ids": ["dave"]}]

    # A process dies with dave signed in on it: within NODE_TTL (3 s) he goes offline.
    doomed = cluster.start()
    dave = await signed_in(doomed, app, {"id": "dave"})
    assert await watchlist_event(raw_watcher) == [{"name": "online", "user_ids": ["dave"]}]
    doomed.kill()
    # (NODE_TTL, then a live process's reaper, which runs every second)
    assert await watchlist_event(raw_watcher, timeout=20) == [{"name": "offline", "user_ids": ["dave"]}]
    await dave.ws.close()
    for c in (carol, raw_watcher):
        await c.close()
