"""Client events: enabled per app, private/presence only, subscribers only, never echoed, 10/s."""

import pytest

from tests.support.clients import python_backend
from tests.support.raw import RawClient
from service.realtime import signatures


def test_client_event_reaches_other_subscribers_not_the_sender(app, pusherjs):
    sender, receiver = pusherjs(app).connected(), pusherjs(app).connected()
    sender.subscribe("private-chat")
    receiver.subscribe("private-chat")
    sender.send("trigger", channel="private-chat", event="client-typing", data={"who": "a"})
    assert receiver.wait_for(type="event", channel="private-chat", event="client-typing")["data"] == {"who": "a"}
    # An echo would have been written in the same fan-out as the receiver's copy: before this.
    python_backend(app).trigger("private-chat", "marker", {})
    sender.assert_none_before({"type": "event", "channel": "private-chat", "event": "marker"},
                              {"type": "event", "event": "client-typing"})


def test_presence_client_events_carry_the_senders_user_id(app, pusherjs):
    sender, receiver = pusherjs(app).connected(), pusherjs(app).connected()
    sender.subscribe("presence-chat", user_id=2, user_info={})
    receiver.subscribe("presence-chat", user_id=3, user_info={})
    receiver.send("bind", channel="presence-chat", event="client-hi")
    sender.send("trigger", channel="presence-chat", event="client-hi", data={"x": 1})
    assert receiver.wait_for(type="bound_event", channel="presence-chat", event="client-hi")["user_id"] == 2


def _auth(app, socket_id, channel):
    return f"{app['key']}:{signatures.sign(app['secret'], f'{socket_id}:{channel}')}"


async def _pair(tabcast, app, channel):
    a = await RawClient.established(tabcast, app["key"])
    b = await RawClient.established(tabcast, app["key"])
    for c in (a, b):
        frame = await c.subscribe(channel, auth=_auth(app, c.socket_id, channel))
        assert frame["event"] == "pusher_internal:subscription_succeeded"
    return a, b


async def test_client_events_refused_when_the_app_disables_them(tabcast):
    app = tabcast.create_app("no-client-events", client_events=False)
    a, b = await _pair(tabcast, app, "private-x")
    await a.send({"event": "client-x", "channel": "private-x", "data": {}})
    error = await a.recv_event("pusher:error")
    assert error["data"]["code"] == 4301 and "enable" in error["data"]["message"]
    await a.ping_pong()


@pytest.mark.parametrize("frame,why", [
    ({"event": "client-x", "channel": "public-room", "data": {}}, "private and presence"),
    ({"event": "client-x", "channel": "private-elsewhere", "data": {}}, "not subscribed"),
    ({"event": "client-" + "x" * 200, "channel": "private-x", "data": {}}, "longer than 200"),
    ({"event": "client-big", "channel": "private-x", "data": {"blob": "x" * 11000}}, "limit"),
])
async def test_client_event_rules_answer_4301_and_keep_serving(tabcast, app, frame, why):
    a, b = await _pair(tabcast, app, "private-x")
    await a.send(frame)
    error = await a.recv_event("pusher:error")
    assert error["data"]["code"] == 4301 and why in error["data"]["message"]
    await a.send({"event": "client-ok", "channel": "private-x", "data": {"fine": True}})
    assert (await b.recv_event("client-ok"))["data"] == {"fine": True}


async def test_more_than_ten_client_events_per_second_are_rejected(tabcast, app):
    a, b = await _pair(tabcast, app, "private-rate")
    for i in range(11):
        await a.send({"event": "client-n", "channel": "private-rate", "data": {"i": i}})
    error = await a.recv_event("pusher:error")
    assert error["data"]["code"] == 4301 and "per second" in error["data"]["message"]
    received = [(await b.recv_event("client-n"))["data"]["i"] for _ in range(10)]
    assert received == list(range(10))
