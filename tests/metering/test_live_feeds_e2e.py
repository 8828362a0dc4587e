"""The dashboard's live feeds travel through Tabcast itself, on the internal dashboard app.

A socket on the dashboard app, authorized by the dashboard's auth endpoint with the
owner's session, receives each second's metrics and the app's debug events, and the
console's test-event form reaches the app's real subscribers.
"""

import json
import time

import pytest

from tests.support.clients import python_backend
from tests.support.processes import TabcastProcess

from .support import DashboardSession, SharedWorkerSocket


def watch(server, owner: DashboardSession, channel: str, app_id: int) -> SharedWorkerSocket:
    """A dashboard page's socket on the dashboard app, subscribed to one of its private channels."""
    viewer = SharedWorkerSocket(server, owner.dashboard_key(app_id), tabs=1)
    auth = owner.post("/dashboard/realtime/auth/", {"socket_id": viewer.socket_id, "channel_name": channel})["auth"]
    viewer.subscribe(channel, auth)
    return viewer


def next_payloads(viewer: SharedWorkerSocket, event: str, until, limit: int = 30) -> list[dict]:
    """Payloads of ``event`` frames until ``until(payloads)`` holds (at most ``limit`` frames)."""
    payloads = []
    for text in iter(lambda: viewer.events(1, event)[0], None):
        payloads.append(json.loads(json.loads(text)["data"]))
        if until(payloads) or len(payloads) >= limit:
            return payloads
    return payloads


def test_overview_metrics_arrive_every_second_with_physical_and_logical_counts(tabcast, app, pusherjs):
    owner = DashboardSession.owner_of(tabcast, app["app_id"], f"metrics-{app['app_id']}@metering.test")
    viewer = watch(tabcast, owner, f"private-metrics-{app['app_id']}", app["app_id"])
    pusherjs(app).connected()
    worker = SharedWorkerSocket(tabcast, app["key"], tabs=3)
    samples = next_payloads(viewer, "metrics", lambda got: got[-1]["sockets"] == 2 and got[-1]["tabs"] == 4)
    assert (samples[-1]["sockets"], samples[-1]["tabs"]) == (2, 4)
    later = next_payloads(viewer, "metrics", lambda got: len(got) == 2)
    assert 0.5 < later[1]["t"] - later[0]["t"] < 2.5  # one sample a second

    backend = python_backend(app)
    for i in range(3):
        backend.trigger(["orders"], "tick", {"i": i})
    counted = next_payloads(viewer, "metrics", lambda got: got[-1]["totals"]["messages"] == 3)
    rates = [s["messages_per_s"] for s in counted]
    assert max(rates) > 0
    # The rates are per second between samples: over the samples they add up to the 3 messages.
    assert sum(s["messages_per_s"] * (s["t"] - p["t"]) for p, s in zip([later[1], *counted], counted)) \
        == pytest.approx(3, abs=0.05)
    worker.close()
    viewer.close()


def test_debug_console_streams_events_and_publishes_test_events(tabcast, app, pusherjs):
    owner = DashboardSession.owner_of(tabcast, app["app_id"], f"debug-{app['app_id']}@metering.test")
    viewer = watch(tabcast, owner, f"private-debug-{app['app_id']}", app["app_id"])
    subscriber = pusherjs(app).connected()
    subscriber.subscribe("orders")

    answer = owner.post(f"/dashboard/apps/{app['app_id']}/console/publish/",
                        {"channel": "orders", "event": "created", "data": '{"id": 42}'})
    assert answer == {"published": {"channel": "orders", "event": "created"}}
    assert subscriber.wait_for(type="event", channel="orders", event="created")["data"] == {"id": 42}

    def published(batches):
        return [e for b in batches for e in b["events"] if e["kind"] == "published"]
    batches = next_payloads(viewer, "events", lambda got: published(got))
    event = published(batches)[0]
    assert (event["channels"], event["event"], event["bytes"]) == (["orders"], "created", len('{"id": 42}'))
    kinds = {e["kind"] for b in batches for e in b["events"]}
    assert {"connected", "subscribed", "published"} <= kinds
    viewer.close()


def test_debug_console_is_rate_limited_and_says_how_many_it_left_out(tabcast, app):
    owner = DashboardSession.owner_of(tabcast, app["app_id"], f"flood-{app['app_id']}@metering.test")
    viewer = watch(tabcast, owner, f"private-debug-{app['app_id']}", app["app_id"])
    backend = python_backend(app)
    for start in range(0, 80, 10):  # 80 publishes in 8 HTTP batch calls: well over 25 per half second
        backend.trigger_batch([{"channel": "flood", "name": "e", "data": str(i)} for i in range(start, start + 10)])

    def accounted(batches):
        return sum(len(b["events"]) + b["dropped"] for b in batches)
    batches = next_payloads(viewer, "events", lambda got: accounted(got) >= 80)
    assert accounted(batches) == 80
    assert all(len(b["events"]) <= 25 for b in batches)
    assert sum(b["dropped"] for b in batches) > 0
    viewer.close()


@pytest.mark.redis
def test_feeds_cross_processes_on_redis(redis_url, pusherjs):
    """A dashboard on one process sees the cluster's counts and the other process's events."""
    first = TabcastProcess(redis_url=redis_url).start()
    second = TabcastProcess(redis_url=redis_url, var_dir=first.var_dir).start(migrate=False)
    try:
        app = first.create_app("feeds-cluster")
        owner = DashboardSession.owner_of(first, app["app_id"], "owner@feeds-cluster.test").use(second)
        metrics = watch(second, owner, f"private-metrics-{app['app_id']}", app["app_id"])
        debug = watch(second, owner, f"private-debug-{app['app_id']}", app["app_id"])
        # Other processes notice a new console within half a second (their watch refresh): a
        # metrics sample stamped later than that by the server's clock shows the time has passed.
        noticed_by = time.time() + 0.6
        next_payloads(metrics, "metrics", lambda got: got[-1]["t"] >= noticed_by)
        SharedWorkerSocket(first, app["key"], tabs=3).subscribe("orders")  # on the first process

        samples = next_payloads(metrics, "metrics", lambda got: got[-1]["tabs"] == 3)
        assert (samples[-1]["sockets"], samples[-1]["tabs"]) == (1, 3)
        batches = next_payloads(debug, "events", lambda got: any(e["kind"] == "subscribed"
                                                                 for b in got for e in b["events"]))
        subscribed = [e for b in batches for e in b["events"] if e["kind"] == "subscribed"]
        assert subscribed[0]["channel"] == "orders"
    finally:
        second.stop()
        first.stop()
