"""Every bad frame or connect gets the documented answer, and everyone else keeps being served."""

import re

import pytest

from service.realtime import signatures
from tests.support.raw import RawClient, data_of


@pytest.fixture
async def bystander(tabcast, app):
    """A healthy subscriber on the same app: it must keep receiving after each bad input."""
    client = await RawClient.established(tabcast, app["key"])
    assert (await client.subscribe("bystanders"))["event"] == "pusher_internal:subscription_succeeded"
    yield client
    await client.close()


async def still_served(app, bystander, tabcast):
    from tests.realtime.test_http_api import http, _basic

    status, _ = http(tabcast, "POST", "/publish", {"channel": "bystanders", "event": "still-here", "data": {}},
                     _basic(app))
    assert status == 200
    assert (await bystander.recv_event("still-here"))["channel"] == "bystanders"


@pytest.mark.parametrize("frame,code,fragment", [
    ("this is not json", 4300, "Invalid JSON"),
    ("[1, 2, 3]", 4300, "JSON object"),
    ('{"data": {}}', 4300, "event"),
    ('{"event": "pusher:subscribe", "data": {}}', 4300, "data.channel"),
    ('{"event": "pusher:unknown", "data": {}}', 4300, "Unknown event"),
    ('{"event": "not-a-thing"}', 4300, "Unknown event"),
    ('{"event": "tabcast:tabs", "data": {"tabs": -1}}', 4300, "tabs"),
    (b"\x00\x01binary", 4300, "Binary"),
    ('{"event":"client-x","channel":"private-a","data":"' + "x" * 30000 + '"}', 4301, "too large"),
])
async def test_bad_frames_get_an_error_and_the_socket_keeps_working(tabcast, app, bystander, frame, code, fragment):
    client = await RawClient.established(tabcast, app["key"])
    await client.send(frame)
    error = await client.recv_event("pusher:error")
    assert error["data"]["code"] == code and fragment in error["data"]["message"]
    await client.ping_pong()
    assert (await client.subscribe("after-error"))["event"] == "pusher_internal:subscription_succeeded"
    await still_served(app, bystander, tabcast)


@pytest.mark.parametrize("channel,kind", [
    ("bad channel name", "InvalidChannel"),
    ("x" * 201, "LimitReached"),
    ("#server-to-user-someone", "AuthError"),
])
async def test_invalid_channels_get_subscription_errors(tabcast, app, bystander, channel, kind):
    client = await RawClient.established(tabcast, app["key"])
    frame = await client.subscribe(channel)
    assert frame["event"] == "pusher:subscription_error" and frame["data"]["type"] == kind
    await client.ping_pong()
    await still_served(app, bystander, tabcast)


async def test_bad_subscription_signature_is_an_auth_error(tabcast, app, bystander):
    client = await RawClient.established(tabcast, app["key"])
    frame = await client.subscribe("private-vault", auth=f"{app['key']}:{'f' * 64}")
    assert frame["event"] == "pusher:subscription_error" and frame["channel"] == "private-vault"
    assert frame["data"]["type"] == "AuthError" and frame["data"]["status"] == 401
    assert f"{client.socket_id}:private-vault" in frame["data"]["error"]  # says what to sign, not the answer
    assert app["secret"] not in frame["data"]["error"]
    await still_served(app, bystander, tabcast)


async def test_presence_needs_channel_data_with_a_user_id(tabcast, app):
    client = await RawClient.established(tabcast, app["key"])
    channel_data = '{"user_info":{}}'
    auth = f"{app['key']}:{signatures.sign(app['secret'], f'{client.socket_id}:presence-p:{channel_data}')}"
    frame = await client.subscribe("presence-p", auth=auth, channel_data=channel_data)
    assert frame["event"] == "pusher:subscription_error" and "user_id" in frame["data"]["error"]


async def test_presence_user_info_over_1kb_is_refused(tabcast, app):
    client = await RawClient.established(tabcast, app["key"])
    channel_data = '{"user_id":"u","user_info":{"bio":"' + "x" * 1100 + '"}}'
    auth = f"{app['key']}:{signatures.sign(app['secret'], f'{client.socket_id}:presence-p:{channel_data}')}"
    frame = await client.subscribe("presence-p", auth=auth, channel_data=channel_data)
    assert frame["data"]["type"] == "LimitReached" and frame["data"]["status"] == 4301


async def test_unknown_key_is_4001(tabcast, app, bystander):
    client = await RawClient.connect(tabcast, "no-such-key")
    error = await client.recv()
    assert error["event"] == "pusher:error" and error["data"]["code"] == 4001
    assert (await client.closed())[0] == 4001
    await still_served(app, bystander, tabcast)


async def test_unsupported_protocol_version_is_4007(tabcast, app):
    client = await RawClient.connect(tabcast, app["key"], query="?protocol=3")
    assert (await client.recv())["data"]["code"] == 4007
    assert (await client.closed())[0] == 4007


async def test_connection_established_and_ping(tabcast, app):
    client = await RawClient.established(tabcast, app["key"])
    assert client.activity_timeout == 120
    assert client.socket_id.count(".") == 1 and client.socket_id.replace(".", "").isdigit()
    await client.ping_pong()
    await client.send({"event": "pusher:pong", "data": {}})  # answering a server ping is accepted silently
    await client.ping_pong()


async def test_subscription_succeeded_shape(tabcast, app):
    client = await RawClient.established(tabcast, app["key"])
    frame = await client.subscribe("shape")
    # Pusher's shape, plus the stream position recovery adds (docs/recovery.md; pusher-js ignores it).
    assert re.fullmatch(r"[0-9a-f]{8}:0", frame.pop("position"))
    assert frame == {"event": "pusher_internal:subscription_succeeded", "channel": "shape", "data": "{}"}
    channel_data = '{"user_id":"7","user_info":{"n":1}}'
    auth = f"{app['key']}:{signatures.sign(app['secret'], f'{client.socket_id}:presence-s:{channel_data}')}"
    frame = await client.subscribe("presence-s", auth=auth, channel_data=channel_data)
    assert data_of(frame) == {"presence": {"ids": ["7"], "hash": {"7": {"n": 1}}, "count": 1}}
