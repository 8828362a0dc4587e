"""Recovery (docs/recovery.md): positions on frames, resume by position, the seam, `tabcast:resumed`.

Every test runs on a real server, embedded and on Redis: the history lives in process memory in
one and in a Lua-maintained Redis list in the other, behind the same channel-layer interface.
"""

import asyncio
import json

import httpx
import pytest

from service.realtime import signatures
from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient, channel_frames, data_of, subscribed

MAX_REPLAY = 300


@pytest.fixture(scope="module", params=["embedded", "redis"])
def server(request):
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    process = TabcastProcess(redis_url=redis_url, extra_env={"TABCAST_MAX_REPLAY": str(MAX_REPLAY)}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def apps(server):
    return iter(server.create_apps(20, "recovery", client_events=True))


@pytest.fixture
def app(apps):
    return next(apps)


@pytest.fixture
async def http(server, app):
    async with httpx.AsyncClient(base_url=server.http, auth=(app["key"], app["secret"]), timeout=10) as client:
        yield client


async def publish(http, channel: str, data: str, event: str = "e") -> None:
    response = await http.post("/publish", json={"channels": [channel], "event": event, "data": data})
    assert response.status_code == 200, response.text


def token(app, message: str) -> str:
    return f"{app['key']}:{signatures.sign(app['secret'], message)}"


def offset(frame: dict) -> int:
    return int(frame["position"].split(":")[1])


def epoch(frame: dict) -> str:
    return frame["position"].split(":")[0]






async def test_frames_carry_consecutive_positions_from_the_subscribe_position(server, app, http):
    client, answer = await subscribed(server, app["key"], "orders")
    assert answer["position"].endswith(":0")  # a new stream
    for n in range(3):
        await publish(http, "orders", f"m{n}")
    frames = await channel_frames(client, "orders", 3)
    assert [f["data"] for f in frames] == ["m0", "m1", "m2"]
    assert [offset(f) for f in frames] == [1, 2, 3]
    assert {epoch(f) for f in frames} == {epoch(answer)}
    later, answer = await subscribed(server, app["key"], "orders")
    assert answer["position"] == frames[-1]["position"]  # a new subscriber starts after what was sent
    await client.close(), await later.close()


async def test_resume_replays_what_was_missed_then_goes_live(server, app, http):
    client, answer = await subscribed(server, app["key"], "news")
    await publish(http, "news", "seen")
    [seen] = await channel_frames(client, "news", 1)
    await client.close()
    for n in range(5):
        await publish(http, "news", f"missed{n}")
    client, answer = await subscribed(server, app["key"], "news", position=seen["position"])
    assert answer["position"] == seen["position"]
    replay = await channel_frames(client, "news", 6)
    assert [f["data"] for f in replay[:5]] == [f"missed{n}" for n in range(5)]
    assert [offset(f) for f in replay[:5]] == list(range(offset(seen) + 1, offset(seen) + 6))
    assert replay[5]["event"] == "tabcast:resumed"
    assert data_of(replay[5]) == {"recovered": True, "missed": 5}
    await publish(http, "news", "live")
    [live] = await channel_frames(client, "news", 1)
    assert live["data"] == "live" and offset(live) == offset(seen) + 6
    await client.close()


async def test_resume_from_the_current_position_recovers_nothing_missed(server, app, http):
    await publish(http, "quiet", "one")
    client, answer = await subscribed(server, app["key"], "quiet")
    await client.close()
    client, again = await subscribed(server, app["key"], "quiet", position=answer["position"])
    [resumed] = await channel_frames(client, "quiet", 1)
    assert resumed["event"] == "tabcast:resumed" and data_of(resumed) == {"recovered": True, "missed": 0}
    await client.close()


@pytest.mark.parametrize("position, reason", [
    ("zzzz:1", "epoch_changed"),
    (None, "future"),
    ("not-a-position", "invalid_position"),
    (17, "invalid_position"),
    ("a" * 40 + ":1", "invalid_position"),
])
async def test_unrecoverable_positions_are_told_and_still_subscribed(server, app, http, position, reason):
    await publish(http, "prices", "before")
    client, answer = await subscribed(server, app["key"], "prices")
    await client.close()
    if position is None:  # ahead of the stream
        position = f"{epoch(answer)}:{offset(answer) + 5}"
    client, again = await subscribed(server, app["key"], "prices", position=position)
    [resumed] = await channel_frames(client, "prices", 1)
    assert resumed["event"] == "tabcast:resumed"
    assert data_of(resumed) == {"recovered": False, "missed": 0, "reason": reason}
    assert again["position"] == answer["position"]  # live from the current position
    await publish(http, "prices", "after")
    [live] = await channel_frames(client, "prices", 1)
    assert live["data"] == "after"
    await client.close()


async def test_a_position_older_than_the_history_is_too_old(server, app, http):
    client, answer = await subscribed(server, app["key"], "busy")
    await client.close()
    for n in range(105):  # the default history keeps 100 messages
        await publish(http, "busy", str(n))
    client, _ = await subscribed(server, app["key"], "busy", position=answer["position"])
    [resumed] = await channel_frames(client, "busy", 1)
    assert data_of(resumed) == {"recovered": False, "missed": 0, "reason": "too_old"}
    await client.close()


async def test_more_than_the_replay_cap_is_too_many(server, app, http):
    server.update_app(app["app_id"], history_size=MAX_REPLAY + 50)
    client, answer = await subscribed(server, app["key"], "firehose")
    await client.close()
    await asyncio.gather(*(publish(http, "firehose", str(n)) for n in range(MAX_REPLAY + 1)))
    client, _ = await subscribed(server, app["key"], "firehose", position=answer["position"])
    [resumed] = await channel_frames(client, "firehose", 1)
    assert data_of(resumed) == {"recovered": False, "missed": 0, "reason": "too_many"}
    await client.close()


async def test_the_seam_under_concurrent_publishing_has_no_gap_and_no_duplicate(server, app, http):
    """Publish 1,000 messages, 20 at a time, while a subscriber keeps dropping its socket and resuming.

    Across all its sockets it must receive every offset exactly once, in order, and each resume says
    it recovered everything."""
    total = 1000
    client, answer = await subscribed(server, app["key"], "ticker")
    received: list[dict] = []
    position = answer["position"]
    publishing = asyncio.Event()
    progress = asyncio.Event()  # set by the reader: the publisher stays within the history's 100 messages

    async def publisher():
        publishing.set()
        sent = 0
        while sent < total:
            while sent - len(received) > 60:
                progress.clear()
                await progress.wait()
            batch = range(sent, min(sent + 20, total))
            await asyncio.gather(*(publish(http, "ticker", str(n)) for n in batch))
            sent = batch[-1] + 1

    task = asyncio.create_task(publisher())
    await publishing.wait()
    resumes = 0
    while len(received) < total:
        [frame] = await channel_frames(client, "ticker", 1)
        if frame["event"] == "tabcast:resumed":
            assert data_of(frame)["recovered"] is True, frame
            resumes += 1
            continue
        received.append(frame)
        progress.set()
        position = frame["position"]
        if len(received) % 40 == 0 and len(received) < total - 100:
            client.ws.transport.abort()  # the network drops the socket mid-stream
            client, again = await subscribed(server, app["key"], "ticker", position=position)
            assert again["position"] == position
    await task
    await client.close()
    assert [offset(f) for f in received] == list(range(1, total + 1))
    assert sorted(int(f["data"]) for f in received) == list(range(total))
    assert resumes >= 10


async def test_presence_resume_resyncs_members_and_replays(server, app, http):
    channel = "presence-room"

    async def join(user: str, **extra):
        client = await RawClient.established(server, app["key"])
        channel_data = json.dumps({"user_id": user})
        auth = token(app, signatures.channel_auth_message(client.socket_id, channel, channel_data))
        answer = await client.subscribe(channel, auth=auth, channel_data=channel_data, **extra)
        assert answer["event"] == "pusher_internal:subscription_succeeded", answer
        return client, answer

    alice, answer = await join("alice")
    await alice.close()
    bob, _ = await join("bob")
    await publish(http, channel, "while-away")
    alice, again = await join("alice", position=answer["position"])
    assert set(data_of(again)["presence"]["ids"]) == {"alice", "bob"}
    frames = await channel_frames(alice, channel, 2)
    assert frames[0]["data"] == "while-away"
    assert frames[1]["event"] == "tabcast:resumed" and data_of(frames[1])["recovered"] is True
    await alice.close(), await bob.close()


async def test_private_client_events_are_positioned_and_replayed(server, app, http):
    channel = "private-chat"

    async def join(**extra):
        client = await RawClient.established(server, app["key"])
        auth = token(app, signatures.channel_auth_message(client.socket_id, channel, None))
        answer = await client.subscribe(channel, auth=auth, **extra)
        assert answer["event"] == "pusher_internal:subscription_succeeded", answer
        return client, answer

    sender, _ = await join()
    reader, answer = await join()
    await reader.close()
    await sender.send({"event": "client-typing", "channel": channel, "data": {"who": "a"}})
    await sender.ping_pong()
    reader, _ = await join(position=answer["position"])
    frames = await channel_frames(reader, channel, 2)
    assert frames[0]["event"] == "client-typing" and frames[0]["data"] == {"who": "a"}
    assert offset(frames[0]) == offset(answer) + 1
    assert data_of(frames[1]) == {"recovered": True, "missed": 1}
    await sender.close(), await reader.close()


async def test_cache_channels_send_the_cached_event_unless_the_resume_recovered(server, app, http):
    await publish(http, "cache-score", "1-0")
    fresh, answer = await subscribed(server, app["key"], "cache-score")
    [cached] = await channel_frames(fresh, "cache-score", 1)
    assert cached["data"] == "1-0"
    await fresh.close()
    await publish(http, "cache-score", "2-0")
    client, _ = await subscribed(server, app["key"], "cache-score", position=answer["position"])
    frames = await channel_frames(client, "cache-score", 2)
    assert frames[0]["data"] == "2-0" and frames[1]["event"] == "tabcast:resumed"
    await client.close()


async def test_history_off_sends_no_positions(server, app, http):
    server.update_app(app["app_id"], history_size=0)
    client, answer = await subscribed(server, app["key"], "plain", position="abc:1")
    assert "position" not in answer
    await publish(http, "plain", "x")
    [frame] = await channel_frames(client, "plain", 1)
    assert frame == {"event": "e", "channel": "plain", "data": "x"}  # what Pusher sends: no replay, no resumed
    await client.close()
