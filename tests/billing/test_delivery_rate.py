"""Deliveries per second per app (billing/METERING.md, "Quotas"), against real servers.

Tenant A's plan caps it at 200 deliveries/s and its channel has 50 subscribers (50 deliveries per
publish). Publishing in a loop, A gets 429 with the documented body within about two seconds;
every publish answered 200 reaches every subscriber; tenant B, publishing meanwhile, is not
affected; once A stops, its publishes are accepted again within about two seconds. On two
processes sharing Redis the rate is measured cluster-wide.
"""

import asyncio
import json
import re
import time
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async

from billing import quotas as billing_quotas
from billing.models import Plan, Subscription
from service.realtime import quotas
from service.realtime.hub import AppTraffic
from service.realtime.state.memory import MemoryState
from tenants import services
from tenants.models import Tenant
from tests.support.processes import TabcastProcess, wait_until
from tests.support.raw import RawClient

from .quota_support import frames_until_pong, signed_post, simple_publish, subscriber

CAP = 200
SUBSCRIBERS = 50
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

_TENANT_ON_RATE_PLAN = """
import json
from billing.models import Plan, Subscription
from tenants.models import Tenant
from tenants import services
plan, _ = Plan.objects.update_or_create(code={code!r}, defaults=dict(
    name={code!r}, max_connections=1000, max_deliveries_per_second={deliveries!r}))
tenant = Tenant.objects.create(name={code!r} + " team")
Subscription.objects.create(tenant=tenant, plan=plan)
app = services.create_app({code!r} + " app", tenant=tenant, client_events=True)
print(json.dumps({{"app_id": app.id, "key": app.key, "secret": app.secret, "tenant_id": tenant.id}}))
"""


def tenant_on_rate_plan(server, code: str, deliveries: int | None) -> dict:
    """A new tenant on a new plan ``code`` capped at ``deliveries`` per second (no other quota)."""
    out = server.manage("shell", "-c", _TENANT_ON_RATE_PLAN.format(code=code, deliveries=deliveries))
    app = json.loads(out.strip().splitlines()[-1])
    return {**app, "host": "127.0.0.1", "port": server.port, "appId": app["app_id"]}


class Reader:
    """Reads one socket all along (so nothing backs up) and keeps the ``tick`` payloads."""

    def __init__(self, client: RawClient):
        self.client = client
        self.ticks: list[str] = []
        self.errors: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.client.ws:
            frame = json.loads(raw)
            if frame.get("event") == "tick":
                self.ticks.append(frame["data"])
            elif frame.get("event") == "pusher:error":
                self.errors.append(frame["data"])

    async def has(self, expected: list[str], timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.ticks) < len(expected) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.ticks

    async def close(self):
        self.task.cancel()
        await self.client.close()


def publish_loop(server, app: dict, channel: str, seconds: float, pause: float, stop_at_429_after: float | None):
    """Publish ``0, 1, 2...`` for ``seconds`` (or until ``stop_at_429_after`` s past the first 429);
    returns [(seq, status, body, headers, monotonic time)]."""
    results, start, first_429 = [], time.monotonic(), None
    seq = 0
    while time.monotonic() - start < seconds:
        status, body, headers = simple_publish(server, app, channel, data=str(seq))
        now = time.monotonic()
        results.append((seq, status, body, headers, now))
        seq += 1
        if status == 429 and first_429 is None:
            first_429 = now
        if first_429 is not None and stop_at_429_after is not None and now - first_429 >= stop_at_429_after:
            break
        time.sleep(pause)
    return results


def assert_rate_refusal(status: int, body: dict, headers, scope: str | None = None) -> None:
    assert status == 429, (status, body)
    assert body["code"] == 429 and body["error"].startswith("Delivery rate exceeded: "), body
    assert "deliveries_per_second" in body["error"] and f"{CAP:,}" in body["error"], body
    assert (body["quota"], body["limit"]) == ("deliveries_per_second", CAP), body
    assert ISO.fullmatch(body["resets_at"]), body
    assert headers["Retry-After"] == "1", dict(headers)
    if scope:
        assert f"({scope})" in body["error"], body


@pytest.fixture(scope="module")
def server():
    process = TabcastProcess().start()
    yield process
    process.stop()


async def test_an_app_over_its_deliveries_per_second_waits_and_its_neighbour_does_not(server):
    noisy = tenant_on_rate_plan(server, "rate-small", CAP)
    quiet = tenant_on_rate_plan(server, "rate-roomy", None)
    readers = [Reader(await subscriber(server, noisy, "feed")) for _ in range(SUBSCRIBERS)]
    neighbour = Reader(await subscriber(server, quiet, "feed"))

    # A publishes as fast as it can (each publish is 50 deliveries) while B publishes 20/s.
    noisy_run = asyncio.create_task(asyncio.to_thread(publish_loop, server, noisy, "feed", 10, 0.0, 1.5))
    quiet_run = asyncio.create_task(asyncio.to_thread(publish_loop, server, quiet, "feed", 3, 0.05, None))
    noisy_results, quiet_results = await noisy_run, await quiet_run

    refused = [r for r in noisy_results if r[1] == 429]
    assert refused, f"{len(noisy_results)} publishes of 50 deliveries each, none refused"
    assert refused[0][4] - noisy_results[0][4] < 2.5, "the first 429 came late"
    assert_rate_refusal(*refused[0][1:4])
    assert all(r[1] in (200, 429) for r in noisy_results), [r[1:3] for r in noisy_results if r[1] not in (200, 429)]
    accepted = [str(r[0]) for r in noisy_results if r[1] == 200]
    # At most the cap's worth per second (each flush interval, about a second, allows 200).
    duration = noisy_results[-1][4] - noisy_results[0][4]
    assert len(accepted) * SUBSCRIBERS <= CAP * (duration + 2), (len(accepted), duration)

    # Nothing accepted was dropped, nothing refused was delivered, in order, on every socket.
    for reader in readers:
        assert await reader.has(accepted) == accepted
    # The neighbour: every publish accepted, every one delivered.
    assert [r[1] for r in quiet_results] == [200] * len(quiet_results) and len(quiet_results) >= 20
    assert await neighbour.has([str(r[0]) for r in quiet_results]) == [str(r[0]) for r in quiet_results]

    # A stopped: its publishes are accepted again within about two seconds.
    stopped = time.monotonic()
    status = wait_until(lambda: (lambda s: s if s == 200 else None)(simple_publish(server, noisy, "feed",
                                                                                   data="again")[0]),
                        5, interval=0.5, what="the noisy app accepted again")
    assert status == 200 and time.monotonic() - stopped < 3
    for reader in readers:
        assert (await reader.has([*accepted, "again"]))[-1] == "again"
    for reader in [*readers, neighbour]:
        await reader.close()


async def test_both_api_paths_and_client_events_are_refused_while_over_the_rate(server):
    noisy = tenant_on_rate_plan(server, "rate-small-2", CAP)
    readers = [Reader(await subscriber(server, noisy, "private-feed")) for _ in range(SUBSCRIBERS)]
    sender = await subscriber(server, noisy, "private-feed")

    def publish_until_refused():
        for _ in range(200):
            status, body, headers = signed_post(server, noisy, f"/apps/{noisy['app_id']}/events",
                                                {"name": "tick", "channels": ["private-feed"], "data": "x"})
            if status == 429:
                return status, body, headers
            assert status == 200, body
        raise AssertionError("200 signed publishes of 50 deliveries each, none refused")

    # Pusher-signed /events: the same 429.
    assert_rate_refusal(*await asyncio.to_thread(publish_until_refused))

    def batch_until_refused():
        for _ in range(200):
            status, body, headers = signed_post(server, noisy, f"/apps/{noisy['app_id']}/batch_events",
                                                {"batch": [{"name": "tick", "channel": "private-feed",
                                                            "data": "b"}]})
            if status == 429:
                return status, body, headers
            assert status == 200, body
        raise AssertionError("no batch refused")

    assert_rate_refusal(*await asyncio.to_thread(batch_until_refused))

    # A client event while the app is flagged over its rate (the flag set after the flush, for
    # the next second): pusher:error 4301, and the socket stays.
    keep_busy = asyncio.create_task(asyncio.to_thread(publish_loop, server, noisy, "private-feed", 6, 0.0, None))
    refusal = None
    deadline = time.monotonic() + 6
    while refusal is None and time.monotonic() < deadline:
        await sender.send({"event": "client-typing", "channel": "private-feed", "data": {}})
        for frame in await frames_until_pong(sender):
            if frame.get("event") == "pusher:error":
                refusal = frame["data"]
        await asyncio.sleep(0.1)
    await keep_busy
    assert refusal is not None, "no client event refused while over the rate"
    assert refusal["code"] == 4301 and refusal["message"].startswith("Delivery rate exceeded: "), refusal
    await sender.ping_pong()
    for reader in readers:
        await reader.close()
    await sender.close()


@pytest.mark.redis
async def test_the_rate_is_measured_cluster_wide(pair):
    """Publishes through process A, subscribers all on process B: A writes none of the deliveries
    itself, and still refuses once the cluster-wide rate is over the cap."""
    a, b = pair
    noisy = tenant_on_rate_plan(a, "rate-cluster", CAP)
    on_b = {**noisy, "port": b.port}
    readers = [Reader(await subscriber(b, on_b, "feed")) for _ in range(SUBSCRIBERS)]

    results = await asyncio.to_thread(publish_loop, a, noisy, "feed", 10, 0.0, 0.5)
    refused = [r for r in results if r[1] == 429]
    assert refused, f"{len(results)} publishes through A, none refused"
    assert refused[0][4] - results[0][4] < 3.5, "the first 429 came late"
    assert_rate_refusal(*refused[0][1:4], scope="cluster-wide")
    accepted = [str(r[0]) for r in results if r[1] == 200]
    for reader in readers:
        assert await reader.has(accepted) == accepted

    stopped = time.monotonic()
    wait_until(lambda: simple_publish(a, noisy, "feed", data="again")[0] == 200, 5, interval=0.5,
               what="accepted again")
    assert time.monotonic() - stopped < 3
    for reader in readers:
        await reader.close()


# --- the watch itself, with an injected clock, over a real in-memory state and the database ---


@pytest.fixture
def fresh_rate_state():
    quotas.forget_limits()
    quotas._rate_blocked.clear()
    quotas._fan_out.clear()
    yield
    quotas.forget_limits()
    quotas._rate_blocked.clear()
    quotas._fan_out.clear()


def _apps_on_plans():
    capped = Plan.objects.create(code="capped", name="Capped", max_deliveries_per_second=100)
    tenant = Tenant.objects.create(name="Capped team")
    Subscription.objects.create(tenant=tenant, plan=capped)
    app = services.create_app("capped app", tenant=tenant)
    operator = Tenant.objects.create(name="Operator", is_operator=True)
    own = services.create_app("own app", tenant=operator)
    return SimpleNamespace(id=app.id, tenant_id=tenant.id), SimpleNamespace(id=own.id, tenant_id=operator.id)


@pytest.mark.django_db(transaction=True)
async def test_the_watch_flags_an_app_over_its_rate_for_the_next_second_and_learns_its_fan_out(
        monkeypatch, fresh_rate_state):
    now = [1000.0]
    monkeypatch.setattr(billing_quotas, "monotonic", lambda: now[0])
    app, own = await sync_to_async(_apps_on_plans)()
    state = MemoryState()
    watch = billing_quotas.DeliveryRateWatch(SimpleNamespace(state=state), track_seconds=10)

    async def second(app_id, messages, deliveries):
        """One second of traffic, flushed, then the watch's round."""
        now[0] += 1
        watch.note(app_id, "published", {})
        await state.add_metering(app_id, 0, messages, deliveries, 0)
        await watch.after_flush()

    await second(app.id, 2, 100)  # the baseline
    assert quotas.delivery_refusal(app) is None
    await second(app.id, 3, 150)  # 150/s over a cap of 100
    hit = quotas.delivery_refusal(app)
    assert (hit.quota, hit.limit, hit.delivered, hit.scope) == ("deliveries_per_second", 100, 150, "cluster-wide")
    assert hit.message.startswith("Delivery rate exceeded: 150 deliveries") and hit.retry_after() == 1
    assert quotas.client_event_refusal(app) == hit.message  # client events: 4301 with this message
    await second(app.id, 0, 0)  # refused meanwhile: the rate fell, accepted again
    assert quotas.delivery_refusal(app) is None and quotas.client_event_refusal(app) is None
    await second(app.id, 2, 100)  # exactly at the cap is not over it
    assert quotas.delivery_refusal(app) is None

    # The fan-out (deliveries per message, cluster-wide): this process's own publishes weigh that much.
    assert quotas._fan_out[app.id] == 50
    assert quotas.delivery_refusal(app, AppTraffic(messages=1)) is None
    local = quotas.delivery_refusal(app, AppTraffic(messages=2))  # 2 x 50 = the cap, within this second
    assert (local.scope, local.delivered, local.limit) == ("this server process", 100, 100)
    assert quotas.delivery_refusal(app, AppTraffic(deliveries=100)).scope == "this server process"

    # No cap: never measured, never refused.
    await second(own.id, 1, 10_000)
    await second(own.id, 1, 10_000)
    assert quotas.delivery_refusal(own) is None
    assert quotas.delivery_refusal(own, AppTraffic(messages=1_000, deliveries=1_000_000)) is None
    assert own.id not in watch.previous

    # An app quiet here for longer than it is tracked is forgotten (its baseline and fan-out too).
    now[0] += 11
    await watch.after_flush()
    assert app.id not in watch.previous and app.id not in quotas._fan_out
