"""/metrics of a single-process server: the gauges computed at scrape time (outbound backlog of a
slow reader, connection quota usage) and the access rule. The 2-worker server, exact counter
deltas and the Usage page are tests/scaleout/test_metrics.py."""

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.realtime.test_slow_readers import StalledSocket, publish, publisher, subscribe_blind
from tests.support.processes import TabcastProcess, wait_until
from tests.support.raw import RawClient

TOKEN = "metrics-" + "k" * 24


def scrape(server, token: str | None = TOKEN) -> dict:
    request = urllib.request.Request(server.http + "/metrics",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, 0.0)
            samples[sample.name] += sample.value
    return samples


@pytest.fixture(scope="module")
def server():
    process = TabcastProcess(extra_env={"TABCAST_METRICS_TOKEN": TOKEN,
                                        "TABCAST_MAX_PENDING_BYTES": str(16 * 1024 * 1024)}).start()
    yield process
    process.stop()


def test_the_token_is_required_when_set(server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(server, token=None)
    assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as wrong:
        scrape(server, token="nope")
    assert wrong.value.code == 403
    assert "process_resident_memory_bytes" in scrape(server)  # one process: the standard collectors too
    wait_until(lambda: scrape(server)["tabcast_event_loop_lag_seconds_count"] > 0, 5, what="a lag probe")


async def test_outbound_backlog_bytes_shows_a_reader_that_pauses(server):
    app = server.create_app("backlog")
    stalled = StalledSocket(server, app["key"])
    subscribe_blind(stalled, server, app, ["feed"])
    assert scrape(server)["tabcast_outbound_backlog_bytes"] == 0
    blob = "x" * 10_000
    async with publisher(server, app) as client:
        for n in range(600):  # ~6 MB: more than the kernel's buffers take
            await publish(client, ["feed"], json.dumps({"n": n, "blob": blob}))
    pending = scrape(server)["tabcast_outbound_backlog_bytes"]
    assert pending > 100_000, pending
    assert stalled.event()["event"] == "pusher_internal:subscription_succeeded"
    for _ in range(600):  # the reader catches up: nothing waits any more
        stalled.event()
    wait_until(lambda: scrape(server)["tabcast_outbound_backlog_bytes"] == 0, 10, what="an empty backlog")
    stalled.close()


async def test_connection_quota_usage_of_the_fullest_app(server):
    app = server.create_app("quota")
    server.manage("shell", "-c", (  # a tenant of its own on a plan of four connections
        "from billing.models import Plan, Subscription; from tenants.models import App, Tenant; "
        f"a = App.objects.get(id={app['app_id']}); "
        "a.tenant = Tenant.objects.create(name='four-%d' % a.id); a.save(); "
        "p = Plan.objects.create(code='four-%d' % a.id, name='Four', max_connections=4); "
        "Subscription.objects.create(tenant=a.tenant, plan=p)"))
    clients = [await RawClient.established(server, app["key"]) for _ in range(3)]
    # Computed at each 1 s flush from the cluster-wide count: 3 of 4.
    wait_until(lambda: scrape(server)["tabcast_connection_quota_usage_ratio_max"] == 0.75, 10, what="3/4")
    for client in clients:
        await client.close()
    wait_until(lambda: scrape(server)["tabcast_connection_quota_usage_ratio_max"] == 0, 10, what="no sockets")
