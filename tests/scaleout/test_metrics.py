"""/metrics of a real 2-worker server (Redis): one scrape target answers for both workers, counters
move by exactly what a scripted workload did, the Usage page counts the same, and a flood of apps
adds no series.

Every scrape is parsed with prometheus_client's own text parser.
"""

import asyncio
import json
import socket
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.realtime import signatures
from tests.metering.support import DashboardSession
from tests.realtime.test_http_api import http, signed
from tests.realtime.test_slow_readers import StalledSocket
from tests.scaleout.conftest import publish
from tests.support.processes import TabcastProcess, wait_until
from tests.support.raw import RawClient

pytestmark = pytest.mark.redis

SOCKETS = 12  # all subscribed to "feed"
PUBLISHES = 5  # to "feed": 4 with POST /publish, 1 with the signed POST /apps/{id}/events


class Scraper:
    """GET /metrics, parsed; counts its own scrapes (they are HTTP requests the server counts)."""

    def __init__(self, server):
        self.server = server
        self.scrapes = 0

    def text(self) -> str:
        with urllib.request.urlopen(self.server.http + "/metrics", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            body = response.read().decode()
        self.scrapes += 1
        return body

    def __call__(self) -> dict:
        """{(sample name, frozenset of labels): value} of every sample."""
        samples = {}
        for family in text_string_to_metric_families(self.text()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


def delta(after: dict, before: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def per_label(samples: dict, name: str, label: str) -> dict[str, float]:
    out = defaultdict(float)
    for (sample, labels), number in samples.items():
        if sample == name:
            out[dict(labels).get(label)] += number
    return dict(out)


@pytest.fixture(scope="module")
def server(redis_server):
    """``serve --workers 2`` on its own Redis; app A gets per-app series (TABCAST_METRICS_APPS)."""
    process = TabcastProcess(redis_url=redis_server.url, workers=2, extra_env={
        "TABCAST_METRICS_LATENCY_SAMPLE": "1",  # time every publish: the histogram must fill here
        "TABCAST_MAX_PENDING_BYTES": str(64 * 1024), "TABCAST_SLOW_CLOSE_DEADLINE": "2",
        "TABCAST_HANDSHAKE_TIMEOUT": "1", "TABCAST_MAX_SUBSCRIPTIONS_PER_SOCKET": "3"})
    process.migrate()
    process.apps = process.create_apps(2, "metrics", client_events=True)  # before start: A's id is configured
    process.env["TABCAST_METRICS_APPS"] = str(process.apps[0]["app_id"])
    process.start(migrate=False)
    # /healthz answered by the first worker up; the second is serving once its gauges appear too.
    wait_for(Scraper(process), lambda s: len(per_label(s, "tabcast_connections", "pid")) == 2, "both workers")
    yield process
    process.stop()


def wait_for(scrape: Scraper, check, what: str, timeout: float = 10) -> dict:
    """Scrape until ``check(samples)`` holds (the traffic counters arrive with the 1 s flush)."""
    last = {}

    def ready():
        last["samples"] = samples = scrape()
        return samples if check(samples) else None
    try:
        return wait_until(ready, timeout, interval=0.1, what=what)
    except TimeoutError as timeout_error:
        shown = sorted((name, sorted(labels), number) for (name, labels), number in last["samples"].items()
                       if name.startswith("tabcast_") and "_bucket" not in name)
        raise AssertionError(f"{timeout_error}; last scrape: {shown}") from None


async def recv_text(client: RawClient, event: str) -> str:
    """The next frame with this event name, as the text the server sent."""
    while True:
        text = await asyncio.wait_for(client.ws.recv(), 5)
        if json.loads(text).get("event") == event:
            return text


async def test_exact_counter_deltas_of_a_scripted_workload_on_two_workers(server):
    app = server.apps[0]
    app_id = app["app_id"]
    scrape = Scraper(server)
    before = scrape()
    scrapes_before = scrape.scrapes

    # N sockets (the kernel spreads them over both workers), all on "feed"; two also on a private channel.
    clients = [await RawClient.established(server, app["key"]) for _ in range(SOCKETS)]
    for client in clients:
        assert (await client.subscribe("feed"))["event"] == "pusher_internal:subscription_succeeded"
    for client in clients[:2]:
        auth = f"{app['key']}:{signatures.sign(app['secret'], f'{client.socket_id}:private-chat')}"
        assert (await client.subscribe("private-chat", auth=auth))["event"].endswith("subscription_succeeded")

    # Both workers hold sockets, and one scrape (whichever worker answers) shows both.
    during = wait_for(scrape, lambda s: sum(per_label(s, "tabcast_connections", "pid").values()) == SOCKETS,
                      "both workers' sockets in one scrape", timeout=5)
    by_worker = per_label(during, "tabcast_connections", "pid")
    assert len(by_worker) == 2 and all(count > 0 for count in by_worker.values()), by_worker
    # The app's sockets across the cluster (from the shared state at each flush): max over the workers.
    wait_for(scrape, lambda s: value(s, "tabcast_app_connections", app=app_id) == SOCKETS, "the app's sockets")

    # M publishes to "feed": every socket gets each; the bytes are counted as the clients receive them.
    sent_bytes = 0
    for n in range(PUBLISHES - 1):
        status, _, _ = publish(app, "feed", "e", {"n": n})
        assert status == 200
    body = json.dumps({"name": "e", "channel": "feed", "data": json.dumps({"n": "signed"})}).encode()
    assert http(server, "POST", signed(app, "POST", f"/apps/{app_id}/events", body=body), body=body)[0] == 200
    bad = signed(app, "POST", f"/apps/{app_id}/events", body=body, secret="wrong")
    assert http(server, "POST", bad, body=body)[0] == 401
    for client in clients:
        for _ in range(PUBLISHES):
            sent_bytes += len((await recv_text(client, "e")).encode())
    # A client event: to the other subscriber only.
    await clients[0].send({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}})
    sent_bytes += len((await recv_text(clients[1], "client-typing")).encode())

    # Refused connects, one for each of two reasons.
    unknown = await RawClient.connect(server, "0" * 20)
    assert (await unknown.closed())[0] == 4001
    old = await RawClient.connect(server, app["key"], query="?protocol=99")
    assert (await old.closed())[0] == 4007

    # Disconnects: clean closes (1000), dropped TCP connections (1005 from uvicorn), a code no one defines ("other").
    for client in clients[:8]:
        await client.close()
    for client in clients[8:11]:
        client.ws.transport.abort()
    await clients[11].ws.close(code=4999)

    deliveries = PUBLISHES * SOCKETS + 1
    after = wait_for(scrape, lambda s: delta(s, before, "tabcast_deliveries_total") >= deliveries
                     and delta(s, before, "tabcast_disconnects_total", code=1005) >= 3
                     and delta(s, before, "tabcast_http_requests_total", route="events", status=401) >= 1
                     and sum(per_label(s, "tabcast_connections", "pid").values()) == 0
                     and value(s, "tabcast_app_connections", app=app_id) == 0,
                     "the workload's counts")
    d = lambda name, **labels: delta(after, before, name, **labels)  # noqa: E731
    assert d("tabcast_connects_total") == SOCKETS
    assert d("tabcast_subscribes_total") == SOCKETS + 2
    assert (d("tabcast_disconnects_total", code=1000), d("tabcast_disconnects_total", code=1005),
            d("tabcast_disconnects_total", code="other")) == (8, 3, 1)
    assert sum(per_label(after, "tabcast_disconnects_total", "code").values()) \
        - sum(per_label(before, "tabcast_disconnects_total", "code").values()) == SOCKETS
    assert (d("tabcast_handshake_failures_total", reason="unknown_app"),
            d("tabcast_handshake_failures_total", reason="protocol")) == (1, 1)
    assert sum(per_label(after, "tabcast_handshake_failures_total", "reason").values()) \
        - sum(per_label(before, "tabcast_handshake_failures_total", "reason").values()) == 2
    assert (d("tabcast_messages_published_total", source="http"),
            d("tabcast_messages_published_total", source="client_event")) == (PUBLISHES, 1)
    assert d("tabcast_messages_total") == PUBLISHES + 1
    assert d("tabcast_deliveries_total") == deliveries
    assert d("tabcast_bytes_sent_total") == sent_bytes
    assert d("tabcast_slow_reader_closes_total") == 0
    assert (d("tabcast_app_messages_total", app=app_id), d("tabcast_app_deliveries_total", app=app_id),
            d("tabcast_app_bytes_sent_total", app=app_id)) == (PUBLISHES + 1, deliveries, sent_bytes)
    assert d("tabcast_frames_received_total") >= SOCKETS + 2 + 1  # subscribes and the client event
    # HTTP requests by route and status, on both the fast path and Django.
    assert d("tabcast_http_requests_total", route="publish", status=200) == PUBLISHES - 1
    assert d("tabcast_http_requests_total", route="events", status=200) == 1
    assert d("tabcast_http_requests_total", route="events", status=401) == 1
    assert d("tabcast_http_request_duration_seconds_count", route="publish") == PUBLISHES - 1
    # Every scrape but the last is counted (the last one counts itself after it answered).
    assert d("tabcast_http_requests_total", route="metrics", status=200) == scrape.scrapes - scrapes_before
    # Sampled latency (1 in 1 here) and the event-loop lag probe have samples.
    assert d("tabcast_publish_latency_seconds_count") >= PUBLISHES
    assert value(after, "tabcast_event_loop_lag_seconds_count") > 0
    assert value(after, "tabcast_event_loop_lag_seconds_bucket", le="+Inf") \
        == value(after, "tabcast_event_loop_lag_seconds_count")
    assert d("tabcast_limit_rejections_total", kind="ip_sockets") == 0

    # The Usage page (its API) counts the same messages, deliveries and bytes for the app.
    session = DashboardSession.owner_of(server, app_id, "metrics-owner@example.com")
    usage = session.wait_for_usage(app_id, {"deliveries": deliveries})  # the summary
    assert (usage["messages"], usage["deliveries"], usage["bytes"]) == (
        d("tabcast_app_messages_total", app=app_id), d("tabcast_app_deliveries_total", app=app_id),
        d("tabcast_app_bytes_sent_total", app=app_id))


def subscribers(server, app, channel: str) -> int:
    path = signed(app, "GET", f"/apps/{app['app_id']}/channels/{channel}", params={"info": "subscription_count"})
    return http(server, "GET", path)[1]["subscription_count"]


async def test_a_slow_reader_closed_with_4100_is_counted_once(server):
    app = server.apps[1]
    scrape = Scraper(server)
    before = scrape()
    stalled = StalledSocket(server, app["key"])
    stalled.send({"event": "pusher:subscribe", "data": {"channel": "slow"}})
    wait_until(lambda: subscribers(server, app, "slow") == 1, 10, what="the subscription")
    blob = "x" * 10_000
    published = 0
    while subscribers(server, app, "slow"):
        for _ in range(20):
            assert publish(app, "slow", "e", {"n": published, "blob": blob})[0] == 200
            published += 1
        assert published < 5_000, "the slow reader was never closed"
    after = wait_for(scrape, lambda s: delta(s, before, "tabcast_disconnects_total", code=4100) >= 1, "the 4100")
    assert delta(after, before, "tabcast_slow_reader_closes_total") == 1
    assert delta(after, before, "tabcast_disconnects_total", code=4100) == 1
    stalled.close()


async def test_a_flood_of_apps_adds_no_series(server):
    scrape = Scraper(server)
    before = scrape()
    flood = server.create_apps(30, "flood")
    for app in flood:
        client = await RawClient.established(server, app["key"])
        assert (await client.subscribe("news"))["event"] == "pusher_internal:subscription_succeeded"
        assert publish(app, "news", "e", {"hello": 1})[0] == 200
        await client.recv_event("e")
        await client.close()
    after = wait_for(scrape, lambda s: delta(s, before, "tabcast_deliveries_total") >= len(flood), "the flood")
    flood_ids = {str(app["app_id"]) for app in flood}
    labels = {value for (_, sample_labels) in after for _, value in sample_labels}
    assert not labels & flood_ids
    app_labels = {dict(sample_labels)["app"] for (_, sample_labels) in after if "app" in dict(sample_labels)}
    assert app_labels <= {str(server.apps[0]["app_id"])}
    # 30 more apps did not add per-app series: at most a few new label values (a new HTTP status...).
    assert len(after) - len(before) < 20, sorted({name for name, _ in after.keys() - before.keys()})


async def test_handshake_timeouts_and_limit_refusals_are_counted(server):
    app = server.apps[1]
    scrape = Scraper(server)
    before = scrape()
    # Half a request, then silence: aborted after TABCAST_HANDSHAKE_TIMEOUT (1 s here).
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"GET /app/" + app["key"].encode() + b"?protocol=7 HTTP/1.1\r\nHost: x\r\n")
    slow.settimeout(10)
    assert slow.recv(100) == b""  # closed by the server
    slow.close()
    # A 4th subscription on a socket allowed 3; 12 client events in well under a second (10/s allowed).
    client = await RawClient.established(server, app["key"])
    for n in range(3):
        auth = f"{app['key']}:{signatures.sign(app['secret'], f'{client.socket_id}:private-{n}')}"
        assert (await client.subscribe(f"private-{n}", auth=auth))["event"].endswith("subscription_succeeded")
    refused = await client.subscribe("one-too-many")
    assert refused["event"] == "pusher:subscription_error" and refused["data"]["type"] == "LimitReached"
    for n in range(12):
        await client.send({"event": "client-x", "channel": "private-0", "data": {"n": n}})
    await client.ping_pong()  # every client event was handled before the pong
    after = wait_for(scrape, lambda s: delta(s, before, "tabcast_handshake_failures_total", reason="timeout") >= 1
                     and delta(s, before, "tabcast_limit_rejections_total", kind="client_events_per_socket") >= 2,
                     "the refusals")
    assert delta(after, before, "tabcast_handshake_failures_total", reason="timeout") == 1
    assert delta(after, before, "tabcast_limit_rejections_total", kind="subscriptions_per_socket") == 1
    assert delta(after, before, "tabcast_limit_rejections_total", kind="client_events_per_socket") == 2
    assert delta(after, before, "tabcast_messages_published_total", source="client_event") == 10
    await client.close()


def test_a_redis_outage_shows_as_redis_down_then_reconnects_and_rejoins(server, redis_server):
    """Last in the module: it restarts the module's Redis."""
    scrape = Scraper(server)
    before = scrape()
    assert per_label(before, "tabcast_redis_up", "pid") and all(
        up == 1 for up in per_label(before, "tabcast_redis_up", "pid").values())
    redis_server.stop()
    try:
        # /metrics needs no Redis; both workers notice within their probe interval.
        down = wait_for(scrape, lambda s: sorted(per_label(s, "tabcast_redis_up", "pid").values()) == [0, 0],
                        "both workers reporting Redis down", timeout=20)
        assert delta(down, before, "tabcast_redis_errors_total", part="delivery") >= 2
    finally:
        redis_server.start()
    back = wait_for(scrape, lambda s: sorted(per_label(s, "tabcast_redis_up", "pid").values()) == [1, 1],
                    "both workers reporting Redis up", timeout=30)
    assert delta(back, before, "tabcast_broker_rejoins_total") >= 2  # each worker re-joined its groups
    assert delta(back, before, "tabcast_redis_reconnects_total", part="delivery") >= 2
