"""Webhooks in Pusher's format, verified with the official library's validator."""


import pytest

from tests.support.clients import python_backend
from tests.support.webhooks import Receiver
from tests.support.processes import TabcastProcess, wait_until


@pytest.fixture(scope="module")
def hooked():
    server = TabcastProcess(extra_env={"TABCAST_WEBHOOKS_ALLOW_PRIVATE": "1"}).start()
    yield server
    server.stop()


def test_lifecycle_webhooks_validate_with_the_pusher_library(hooked, pusherjs):
    receiver = Receiver()
    app = hooked.create_app("hooks", client_events=True, webhook_url=receiver.url)
    backend = python_backend(app)

    alice = pusherjs(app).connected()
    alice.subscribe("presence-room", user_id=2, user_info={})
    events = []
    for _ in range(2):
        headers, body, event = receiver.next_event()
        assert headers["Content-Type"] == "application/json" and headers["X-Pusher-Key"] == app["key"]
        validated = backend.validate_webhook(headers["X-Pusher-Key"], headers["X-Pusher-Signature"], body.decode())
        assert validated is not None and validated["events"][0] == event
        events.append(event)
    assert events == [{"name": "channel_occupied", "channel": "presence-room"},
                      {"name": "member_added", "channel": "presence-room", "user_id": 2}]

    bob = pusherjs(app).connected()
    bob.subscribe("presence-room", user_id=3, user_info={})
    assert receiver.next_event()[2] == {"name": "member_added", "channel": "presence-room", "user_id": 3}
    bob.send("trigger", channel="presence-room", event="client-wave", data={"hi": 1})
    event = receiver.next_event()[2]
    assert event["name"] == "client_event" and event["event"] == "client-wave" and event["user_id"] == 3
    assert event["data"] == {"hi": 1} and event["socket_id"]

    bob.send("disconnect")
    assert receiver.next_event()[2] == {"name": "member_removed", "channel": "presence-room", "user_id": 3}
    alice.send("disconnect")
    names = {receiver.next_event()[2]["name"] for _ in range(2)}
    assert names == {"member_removed", "channel_vacated"}


def test_cache_miss_webhook_and_forged_signatures_fail_validation(hooked, pusherjs):
    receiver = Receiver()
    app = hooked.create_app("cache-hooks", webhook_url=receiver.url)
    client = pusherjs(app).connected()
    client.subscribe("cache-x")
    names = {receiver.next_event()[2]["name"] for _ in range(2)}
    assert names == {"channel_occupied", "cache_miss"}
    client.subscribe("cache-y")
    headers, body, _ = receiver.next_event()
    tampered = body.replace(b"cache-y", b"cache-z")
    assert python_backend(app).validate_webhook(headers["X-Pusher-Key"], headers["X-Pusher-Signature"],
                                                tampered.decode()) is None


def test_failed_deliveries_are_retried(hooked, pusherjs):
    receiver = Receiver(fail_first=1)
    app = hooked.create_app("flaky-hooks", webhook_url=receiver.url)
    pusherjs(app).connected().subscribe("retry-me")
    assert receiver.next_event(timeout=15)[2] == {"name": "channel_occupied", "channel": "retry-me"}


def test_private_destinations_are_refused_by_default(pusherjs):
    """A hosted service must not let tenants aim webhooks at its internal network."""
    receiver = Receiver()
    server = TabcastProcess().start()
    try:
        app = server.create_app("ssrf", webhook_url=receiver.url)
        pusherjs(app).connected().subscribe("occupy")
        wait_until(lambda: "private address" in server.log(), 10, what="the refusal in the log")
        assert receiver.requests.empty()
    finally:
        server.stop()
