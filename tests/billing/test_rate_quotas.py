"""Per-app connects/s and client events/s from the plan, against a real server.

Over the connect rate a new socket gets pusher:error 4100 and is closed with 4100 (Pusher's
"over capacity": clients reconnect after backing off); over the client-event rate the event
gets pusher:error 4301. Both are token buckets per app and per server process.
"""

import asyncio
import json
import time

import pytest

from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient

from .quota_support import frames_until_pong, subscriber, tenant_on_plan


@pytest.fixture(scope="module")
def server():
    process = TabcastProcess().start()
    yield process
    process.stop()


async def _connect(server, key: str) -> tuple[str, RawClient]:
    """("ok", client) when established, ("refused:<code>", client) when refused."""
    client = await RawClient.connect(server, key)
    first = await client.recv()
    if first["event"] == "pusher:connection_established":
        client.socket_id = json.loads(first["data"])["socket_id"]
        return "ok", client
    assert first["event"] == "pusher:error", first
    code, _ = await client.closed()
    assert code == first["data"]["code"], (code, first)
    assert "connection rate of 3 new connections per second" in first["data"]["message"], first
    return f"refused:{code}", client


async def test_connects_over_the_apps_rate_are_refused_with_4100_while_others_keep_serving(server):
    app = tenant_on_plan(server, "slow-connects", connects=3)
    other = tenant_on_plan(server, "other-connects", connects=1000)
    started = time.monotonic()
    first = await subscriber(server, app, "orders")  # the app's plan limits are loaded now
    results = await asyncio.gather(*(_connect(server, app["key"]) for _ in range(30)))
    elapsed = time.monotonic() - started
    outcomes = [outcome for outcome, _ in results]
    accepted, refused = outcomes.count("ok"), outcomes.count("refused:4100")
    assert accepted + refused == 30, outcomes
    # The bucket holds 3 tokens (`first` took one) and refills 3 per second.
    allowed = 3 + 3 * elapsed
    assert 2 <= accepted and 1 + accepted <= allowed + 0.5, (accepted, elapsed)
    assert refused >= 10, (refused, elapsed)

    # Meanwhile: another tenant's app connects freely, and accepted sockets keep serving.
    others = await asyncio.gather(*(RawClient.established(server, other["key"]) for _ in range(10)))
    for client in [first, *others, *(c for o, c in results if o == "ok")]:
        await client.ping_pong()
    # Later, within the rate again, the app connects (pusher-js retries 4100 after a second).
    await asyncio.sleep(0.4)
    outcome, late = await _connect(server, app["key"])
    assert outcome == "ok"
    for client in [first, late, *others, *(c for o, c in results if o == "ok")]:
        await client.close()


async def test_client_events_over_the_apps_rate_get_4301_even_under_the_per_socket_limit(server):
    app = tenant_on_plan(server, "chatty", client_events=5)
    other = tenant_on_plan(server, "other-chatty", client_events=1000)
    senders = [await subscriber(server, app, "private-chat") for _ in range(2)]
    listener = await subscriber(server, app, "private-chat")

    # 5 + 5 events from two sockets: each under the 10/s per socket, together over the app's 5/s.
    started = time.monotonic()
    for i in range(5):
        for n, sender in enumerate(senders):
            await sender.send({"event": "client-msg", "channel": "private-chat", "data": {"from": n, "i": i}})
    replies = [await frames_until_pong(sender) for sender in senders]
    elapsed = time.monotonic() - started
    errors = [f for frames in replies for f in frames if f.get("event") == "pusher:error"]
    assert all(e["data"]["code"] == 4301 for e in errors), errors
    assert all("over its rate of 5 client events per second" in e["data"]["message"] for e in errors), errors
    relayed = 10 - len(errors)
    assert 5 <= relayed <= 5 + 5 * elapsed + 1 and len(errors) >= 3, (relayed, elapsed)

    received = []
    while len(received) < relayed:
        frame = await listener.recv()
        if frame.get("event") == "client-msg":
            received.append(frame)
    assert not [f for f in await frames_until_pong(listener) if f.get("event") == "client-msg"]

    # The senders' sockets still serve, and another tenant's client events flow.
    for sender in senders:
        await sender.ping_pong()
    a = await subscriber(server, other, "private-chat")
    b = await subscriber(server, other, "private-chat")
    for i in range(8):
        await a.send({"event": "client-msg", "channel": "private-chat", "data": {"i": i}})
    assert not [f for f in await frames_until_pong(a) if f.get("event") == "pusher:error"]
    for _ in range(8):
        await b.recv_event("client-msg")
    for client in [*senders, listener, a, b]:
        await client.close()
