"""Liveness: the server pings a silent client and closes it with 4201 if the pong never comes."""

import pytest

from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient


@pytest.fixture(scope="module")
def impatient():
    server = TabcastProcess(extra_env={"TABCAST_ACTIVITY_TIMEOUT": "1", "TABCAST_PONG_GRACE": "1"}).start()
    yield server
    server.stop()


async def test_silent_client_is_pinged_then_closed_with_4201(impatient):
    app = impatient.create_app("idle")
    client = await RawClient.established(impatient, app["key"])
    assert client.activity_timeout == 1
    assert (await client.recv(timeout=5))["event"] == "pusher:ping"
    error = await client.recv(timeout=5)
    assert error["event"] == "pusher:error" and error["data"]["code"] == 4201
    assert (await client.closed())[0] == 4201


async def test_answering_pings_keeps_the_connection(impatient):
    app = impatient.create_app("lively")
    client = await RawClient.established(impatient, app["key"])
    for _ in range(3):  # three rounds span several timeouts
        assert (await client.recv(timeout=5))["event"] == "pusher:ping"
        await client.send({"event": "pusher:pong", "data": {}})
    await client.ping_pong()


async def test_subscription_count_events_when_enabled(impatient):
    app = impatient.create_app("counting", subscription_count=True)
    first = await RawClient.established(impatient, app["key"])
    await first.subscribe("counted")
    assert (await first.recv_event("pusher_internal:subscription_count"))["data"] == '{"subscription_count":1}'
    second = await RawClient.established(impatient, app["key"])
    await second.subscribe("counted")
    assert (await first.recv_event("pusher_internal:subscription_count"))["data"] == '{"subscription_count":2}'
    await second.close()
    assert (await first.recv_event("pusher_internal:subscription_count"))["data"] == '{"subscription_count":1}'
