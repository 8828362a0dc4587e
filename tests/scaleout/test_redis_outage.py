"""A Redis restart during traffic: Tabcast stays up, publishes fail fast, then everything heals."""

import itertools
import urllib.request

import pytest
from pusher.errors import PusherBadStatus

from tests.support.clients import python_backend
from tests.support.processes import wait_until

from .conftest import on, publish

pytestmark = pytest.mark.redis


@pytest.fixture
def outage(restartable):
    return restartable


TICKS = itertools.count(1)


def delivered_again(app: dict, client, channel: str) -> bool:
    """Publish a new numbered event; True once one reaches the client (at-most-once while healing)."""
    n = next(TICKS)
    status, _, _ = publish(app, channel, "tick", {"n": n})
    if status != 200:
        return False
    try:
        client.wait_for(timeout=1, type="event", channel=channel, event="tick", data={"n": n})
    except AssertionError:
        return False
    return True


def test_redis_restart_fails_publishes_fast_then_heals_without_restarting_tabcast(outage, pusherjs):
    app = outage.a.create_app("outage")
    subscriber = pusherjs(app).connected()
    subscriber.subscribe("ticks")
    member = pusherjs(on(app, outage.b)).connected()
    member.subscribe("presence-room", user_id="u1", user_info={})
    publish(on(app, outage.b), "ticks", "tick", {"n": 0})
    subscriber.wait_for(type="event", channel="ticks", event="tick")

    outage.redis.stop()
    status, body, headers = publish(on(app, outage.b), "ticks", "tick", {"n": -1})
    assert status == 503
    assert body == {"error": "The realtime backend is unavailable; retry shortly", "code": 503}
    assert headers["Retry-After"] == "1"
    for server in (outage.a, outage.b):
        with urllib.request.urlopen(f"{server.http}/healthz", timeout=5) as response:
            assert response.status == 200
    # Sockets connect and subscribe during the outage too; they start receiving once Redis is back.
    latecomer = pusherjs(on(app, outage.b)).connected()
    latecomer.subscribe("late")

    outage.redis.start()  # empty: no persistence, every key and subscription is gone

    wait_until(lambda: delivered_again(on(app, outage.b), subscriber, "ticks"), 30, interval=0,
               what="publishes through B to reach a subscriber on A again")
    wait_until(lambda: delivered_again(app, latecomer, "late"), 30, interval=0,
               what="a subscription made during the outage to receive")
    backend = python_backend(app)

    def channels():
        try:
            return backend.channels_info()["channels"]
        except PusherBadStatus as error:  # 503 until this process's state sees Redis back
            assert str(error).startswith("503"), error
            return None

    wait_until(lambda: channels() == {
        "ticks": {"subscription_count": 1}, "late": {"subscription_count": 1},
        "presence-room": {"subscription_count": 1}}, 15, what="counts to be rewritten by the heartbeats")
    assert [u["id"] for u in backend.users_info("presence-room")["users"]] == ["u1"]
