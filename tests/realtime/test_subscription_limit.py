"""One socket cannot hold more subscriptions than TABCAST_MAX_SUBSCRIPTIONS_PER_SOCKET."""

import json
import urllib.request

import pytest

from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient

LIMIT = 20


@pytest.fixture(scope="module")
def capped():
    server = TabcastProcess(extra_env={"TABCAST_MAX_SUBSCRIPTIONS_PER_SOCKET": str(LIMIT)}).start()
    yield server
    server.stop()


def publish(server, app, channel: str, data: str) -> None:
    request = urllib.request.Request(
        server.http + "/publish", method="POST",
        data=json.dumps({"channel": channel, "event": "e", "data": data}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {app['key']}:{app['secret']}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


async def test_the_subscription_over_the_limit_is_refused_and_the_socket_keeps_serving(capped):
    app = capped.create_app("many")
    client = await RawClient.established(capped, app["key"])
    for n in range(LIMIT):
        assert (await client.subscribe(f"c-{n}"))["event"] == "pusher_internal:subscription_succeeded"
    refused = await client.subscribe("one-too-many")
    assert refused["event"] == "pusher:subscription_error" and refused["channel"] == "one-too-many"
    assert refused["data"]["type"] == "LimitReached" and refused["data"]["status"] == 4100
    assert f"{LIMIT} subscriptions" in refused["data"]["error"]
    # Subscribing again to a channel it holds is not a new subscription.
    assert (await client.subscribe("c-0"))["event"] == "pusher_internal:subscription_succeeded"

    # Still served: the channels it holds deliver, the refused one does not (the marker published
    # to it afterwards, then to a held channel, shows which frames reach the socket and in what order).
    publish(capped, app, "one-too-many", "lost")
    publish(capped, app, f"c-{LIMIT - 1}", "kept")
    frame = await client.recv_event("e")
    assert (frame["channel"], frame["data"]) == (f"c-{LIMIT - 1}", "kept")

    # Leaving one makes room for another.
    await client.send({"event": "pusher:unsubscribe", "data": {"channel": "c-3"}})
    assert (await client.subscribe("one-too-many"))["event"] == "pusher_internal:subscription_succeeded"
    await client.ping_pong()
    await client.close()


async def test_the_limit_is_per_socket(capped):
    app = capped.create_app("per-socket")
    first = await RawClient.established(capped, app["key"])
    for n in range(LIMIT):
        await first.subscribe(f"c-{n}")
    second = await RawClient.established(capped, app["key"])
    assert (await second.subscribe("c-0"))["event"] == "pusher_internal:subscription_succeeded"
    assert (await second.subscribe("another"))["event"] == "pusher_internal:subscription_succeeded"
    await first.close()
    await second.close()
