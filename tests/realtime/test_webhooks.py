"""Webhooks in Pusher's format, verified with the official library's validator."""

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.support.clients import python_backend
from tests.support.processes import TabcastProcess, wait_until


class Receiver:
    """A customer's webhook endpoint: records every request; can be told to fail first."""

    def __init__(self, fail_first: int = 0):
        self.requests: queue.Queue = queue.Queue()
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                else:
                    receiver.requests.put((dict(self.headers), body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def next_event(self, timeout: float = 10) -> tuple[dict, bytes, dict]:
        headers, body = self.requests.get(timeout=timeout)
        payload = json.loads(body)
        assert len(payload["events"]) == 1 and isinstance(payload["time_ms"], int)
        return headers, body, payload["events"][0]


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
