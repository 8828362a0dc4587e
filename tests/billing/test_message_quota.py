"""Messages per day per plan, against a real server: counted as Pusher counts them, enforced
with 429 on HTTP publishes and 4301 on client events, and nothing else breaks.

Counting rule (billing/METERING.md, "Quotas"): a publish counts 1 per channel, each frame
delivered to a physical socket 1 (a SharedWorker socket carrying 5 tabs: 1), each webhook 1;
presence member_added/removed frames count as the deliveries they are.
"""

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from tests.metering.support import DashboardSession, SharedWorkerSocket
from tests.support.processes import TabcastProcess, wait_until
from tests.support.raw import RawClient

from .quota_support import (WebhookRecorder, frames_until_pong, quota_shown, signed_post, simple_publish,
                            subscriber, tenant_on_plan)


@pytest.fixture(scope="module")
def server():
    process = TabcastProcess(extra_env={"TABCAST_WEBHOOKS_ALLOW_PRIVATE": "1"}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def webhooks():
    recorder = WebhookRecorder()
    yield recorder
    recorder.close()


def used_reaches(owner: DashboardSession, app_id: int, expected: int) -> int:
    """Wait until the traffic flush (every second) has counted ``expected``; returns what is shown then."""
    return wait_until(lambda: (lambda used: used if used >= expected else None)(
        quota_shown(owner, app_id)["used"]), 10, interval=0.2, what=f"{expected} messages counted")


def next_midnight_utc() -> str:
    return datetime.fromtimestamp((int(time.time()) // 86400 + 1) * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_publish_counts_once_plus_once_per_socket_and_a_shared_socket_counts_once(server):
    app = tenant_on_plan(server, "counting", messages=100_000)
    owner = DashboardSession.owner_of(server, app["app_id"], "counting@quota.test")
    assert quota_shown(owner, app["app_id"])["used"] == 0

    sockets = [await subscriber(server, app, "orders") for _ in range(3)]
    status, _, _ = simple_publish(server, app, "orders")
    assert status == 200
    for socket in sockets:
        assert (await socket.recv_event("tick"))["channel"] == "orders"
    assert used_reaches(owner, app["app_id"], 4) == 4  # 1 publish + 3 deliveries
    for socket in sockets:
        await socket.close()

    worker = SharedWorkerSocket(server, app["key"], tabs=5)
    worker.subscribe("orders")
    status, _, _ = simple_publish(server, app, "orders")
    assert status == 200
    worker.events(1, "tick")
    assert used_reaches(owner, app["app_id"], 6) == 6  # + 1 publish + 1 delivery, not 5
    worker.close()
    shown = quota_shown(owner, app["app_id"])
    assert (shown["limit"], shown["percent"]) == (100_000, 0.0)


async def test_presence_events_and_webhooks_count_as_messages(server, webhooks):
    app = tenant_on_plan(server, "presence-counting", messages=100_000, webhook=webhooks.url)
    owner = DashboardSession.owner_of(server, app["app_id"], "presence@quota.test")
    mine = lambda: [e for e in webhooks.events if e.get("channel") == "presence-room"]  # noqa: E731

    first = await subscriber(server, app, "presence-room", user_id="1")
    second = await subscriber(server, app, "presence-room", user_id="2")
    added = await first.recv_event("pusher_internal:member_added")
    assert json.loads(added["data"])["user_id"] == "2"
    # channel_occupied, member_added (1), member_added (2): 3 webhooks; member_added to `first`: 1 delivery.
    wait_until(lambda: len(mine()) == 3, 10, what="3 webhooks")
    assert sorted(e["name"] for e in mine()) == ["channel_occupied", "member_added", "member_added"]
    assert used_reaches(owner, app["app_id"], 4) == 4
    await second.close()
    await first.recv_event("pusher_internal:member_removed")
    # member_removed to `first` (1 delivery) and its webhook (1).
    wait_until(lambda: len(mine()) == 4, 10, what="the member_removed webhook")
    assert used_reaches(owner, app["app_id"], 6) == 6
    await first.close()


async def test_at_the_quota_publishes_get_429_client_events_4301_and_everything_else_works(server):
    app = tenant_on_plan(server, "tiny", messages=50)
    other = tenant_on_plan(server, "roomy", messages=100_000)
    owner = DashboardSession.owner_of(server, app["app_id"], "tiny@quota.test")
    sockets = [await subscriber(server, app, "private-orders") for _ in range(3)]

    accepted, deadline = 0, time.monotonic() + 15
    while True:  # each accepted publish is 4 messages: 13 reach 52; the flag follows within ~1 s
        status, body, headers = simple_publish(server, app, "private-orders", data=str(accepted))
        if status == 429:
            break
        assert status == 200, body
        accepted += 1
        assert time.monotonic() < deadline, f"still accepting after {accepted} publishes"
        await asyncio.sleep(0.05)
    assert 13 <= accepted <= 60, accepted
    resets_at = next_midnight_utc()
    assert body["code"] == 429
    assert "Message quota exceeded" in body["error"] and "messages_per_day" in body["error"]
    assert "50 messages" in body["error"] and resets_at in body["error"], body
    assert (body["quota"], body["limit"], body["resets_at"]) == ("messages_per_day", 50, resets_at)
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 86400
    assert abs(time.time() + retry_after - datetime.fromisoformat(resets_at).timestamp()) < 5

    # The Pusher-signed endpoints too, one event or a batch.
    path = f"/apps/{app['app_id']}/events"
    status, body, headers = signed_post(server, app, path, {"name": "tick", "channels": ["private-orders"],
                                                            "data": "late"})
    assert (status, body["code"]) == (429, 429) and resets_at in body["error"] and "Retry-After" in headers
    status, body, _ = signed_post(server, app, f"/apps/{app['app_id']}/batch_events",
                                  {"batch": [{"name": "tick", "channel": "private-orders", "data": "late"}]})
    assert status == 429 and "messages_per_day" in body["error"]

    # Every accepted publish arrived; nothing refused did.
    for socket in sockets:
        ticks = [f for f in await frames_until_pong(socket) if f.get("event") == "tick"]
        assert [f["data"] for f in ticks] == [str(i) for i in range(accepted)]

    # A client event at the quota: pusher:error 4301, not relayed, the socket stays.
    await sockets[0].send({"event": "client-typing", "channel": "private-orders", "data": {}})
    errors = [f for f in await frames_until_pong(sockets[0]) if f.get("event") == "pusher:error"]
    assert len(errors) == 1 and errors[0]["data"]["code"] == 4301, errors
    assert "Message quota exceeded" in errors[0]["data"]["message"]
    for socket in sockets[1:]:
        assert not [f for f in await frames_until_pong(socket) if f.get("event") == "client-typing"]

    # Existing sockets keep working; new ones connect and subscribe.
    fresh = await subscriber(server, app, "private-new")
    for socket in [*sockets, fresh]:
        await socket.ping_pong()

    # Another tenant publishes as usual.
    listener = await subscriber(server, other, "orders")
    status, _, _ = simple_publish(server, other, "orders", data="elsewhere")
    assert status == 200
    assert (await listener.recv_event("tick"))["data"] == "elsewhere"

    # The dashboard shows today's messages against the quota.
    for page in ("overview", "billing"):
        shown = quota_shown(owner, app["app_id"], page)
        assert shown["used"] >= 52 and shown["limit"] == 50 and shown["percent"] == 100.0, shown
        assert "Quota reached" in shown["html"] and resets_at in shown["html"]
    for socket in [*sockets, fresh, listener]:
        await socket.close()


async def test_the_drf_publish_views_answer_429_too():
    process = TabcastProcess(extra_env={"TABCAST_FAST_PUBLISH": "0"}).start()
    try:
        app = tenant_on_plan(process, "one-message", messages=1)
        assert simple_publish(process, app, "orders")[0] == 200  # nobody listens: 1 message
        path = f"/apps/{app['app_id']}/events"
        status, body, headers = wait_until(
            lambda: (lambda r: r if r[0] == 429 else None)(
                signed_post(process, app, path, {"name": "tick", "channels": ["orders"], "data": "x"})),
            10, interval=0.2, what="a 429 from the DRF view")
        assert body["code"] == 429 and "messages_per_day" in body["error"] and next_midnight_utc() in body["error"]
        assert (body["quota"], body["limit"], body["resets_at"]) == ("messages_per_day", 1, next_midnight_utc())
        assert 1 <= int(headers["Retry-After"]) <= 86400
        status, body, _ = simple_publish(process, app, "orders")
        assert status == 429 and "Message quota exceeded" in body["error"]
    finally:
        process.stop()


async def test_operator_apps_have_no_message_quota(server):
    app = server.create_app("operator's own")  # manage.py create_app: the operator's tenant
    for i in range(5):
        assert simple_publish(server, app, "orders", data=str(i))[0] == 200
    socket = await RawClient.established(server, app["key"])
    await socket.ping_pong()
    await socket.close()
