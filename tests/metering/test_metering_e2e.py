"""Metering end to end: real sockets and publishes give exactly the expected counters and rollups.

Each scenario mixes plain pusher-js clients (one tab each) with a SharedWorker-like socket
that reports 3 tabs, publishes a known number of events through the official Python
library, and checks live totals, persisted rollups and savings to the exact count.
"""

import pytest

from tests.support.clients import python_backend
from tests.support.processes import TabcastProcess

from .support import DashboardSession, SharedWorkerSocket

WORKER_TABS = 3


def publish(app: dict, count: int, channel: str = "orders") -> None:
    backend = python_backend(app)
    for i in range(count):
        backend.trigger([channel], "tick", {"i": i, "note": "metering"})


def expected(messages: int, frame_bytes: int, sockets: int, tabs: int) -> dict:
    """Counters after ``messages`` publishes of ``frame_bytes`` total, each to every socket (and
    each kept in the channel's history: apps keep 100 messages per channel by default)."""
    return {"messages": messages, "deliveries": messages * sockets, "bytes": frame_bytes * sockets,
            "logical_deliveries": messages * tabs, "logical_bytes": frame_bytes * tabs, "stored_messages": messages}


def only(values: dict, wanted: dict) -> dict:
    """``values`` cut to the counters ``wanted`` names."""
    return {k: values[k] for k in wanted}


def frame_bytes(texts: list[str]) -> int:
    return sum(len(text.encode()) for text in texts)


@pytest.fixture
def server():
    process = TabcastProcess().start()
    yield process
    process.stop()


def test_embedded_counters_rollups_and_savings_are_exact_across_a_restart(server, pusherjs):
    app = server.create_app("metered")
    owner = DashboardSession.owner_of(server, app["app_id"], "owner@metering.test")
    tabs = [pusherjs(app).connected() for _ in range(2)]
    for tab in tabs:
        tab.subscribe("orders")
    worker = SharedWorkerSocket(server, app["key"], tabs=WORKER_TABS)
    worker.subscribe("orders")
    assert {k: owner.live(app["app_id"])[k] for k in ("sockets", "tabs", "connections_saved")} == \
        {"sockets": 3, "tabs": 5, "connections_saved": 2}

    publish(app, 4)
    sent = worker.events(4, "tick")
    for tab in tabs:
        for _ in range(4):
            tab.wait_for(type="event", channel="orders", event="tick")
    first = expected(4, frame_bytes(sent), sockets=3, tabs=5)
    assert only(owner.wait_for_totals(app["app_id"], first), first) == first

    summary = owner.wait_for_usage(app["app_id"], {"peak_tabs": 5})
    assert {k: summary[k] for k in first} == first
    assert (summary["peak_sockets"], summary["peak_tabs"]) == (3, 5)
    assert 0 < summary["tab_seconds"]
    savings = {s["key"]: s["value"] for s in owner.usage(app["app_id"])["savings"]}
    assert savings["connections"] == 2
    assert savings["deliveries"] == first["logical_deliveries"] - first["deliveries"] == 8
    assert savings["bytes"] == first["logical_bytes"] - first["bytes"]

    # One more event that only the shutdown can persist (the live counters die with the
    # process, and the next periodic round is a minute away).
    publish(app, 1)
    sent += worker.events(1, "tick")
    for tab in tabs:
        tab.wait_for(type="event", channel="orders", event="tick")
    first = expected(5, frame_bytes(sent), sockets=3, tabs=5)
    assert only(owner.wait_for_totals(app["app_id"], first), first) == first

    # A graceful restart persists the last readings; the new process counts from zero and
    # its rollups add to the hour instead of replacing or repeating the first run's.
    worker.close()
    for tab in tabs:
        tab.close()
    server.stop()
    server.start(migrate=False)
    app = {**app, "port": server.port}
    late = pusherjs(app).connected()
    late.subscribe("orders")
    late_worker = SharedWorkerSocket(server, app["key"], tabs=WORKER_TABS)
    late_worker.subscribe("orders")
    publish(app, 2)
    late_sent = late_worker.events(2, "tick")
    late.wait_for(type="event", channel="orders", event="tick")
    late.wait_for(type="event", channel="orders", event="tick")
    second = expected(2, frame_bytes(late_sent), sockets=2, tabs=4)
    total = {k: first[k] + second[k] for k in first}
    summary = owner.wait_for_usage(app["app_id"], {"messages": total["messages"], "deliveries": total["deliveries"]})
    assert {k: summary[k] for k in total} == total
    assert (summary["peak_sockets"], summary["peak_tabs"]) == (3, 5)  # the first run's peak
    assert owner.usage(app["app_id"], "30d")["summary"]["messages"] == 7  # days aggregate the hours


@pytest.mark.redis
def test_two_processes_on_redis_count_each_delivery_once(redis_url, pusherjs):
    first = TabcastProcess(redis_url=redis_url).start()
    second = TabcastProcess(redis_url=redis_url, var_dir=first.var_dir).start(migrate=False)
    try:
        app = first.create_app("metered-cluster")
        owner = DashboardSession.owner_of(first, app["app_id"], "owner@cluster.test")
        tab = pusherjs(app).connected()  # on the first process
        tab.subscribe("orders")
        worker = SharedWorkerSocket(second, app["key"], tabs=WORKER_TABS)  # on the second
        worker.subscribe("orders")
        assert {k: owner.use(second).live(app["app_id"])[k] for k in ("sockets", "tabs")} == \
            {"sockets": 2, "tabs": 4}

        publish(app, 4)
        sent = worker.events(4, "tick")
        for _ in range(4):
            tab.wait_for(type="event", channel="orders", event="tick")
        counts = expected(4, frame_bytes(sent), sockets=2, tabs=4)
        assert only(owner.wait_for_totals(app["app_id"], counts), counts) == counts
        assert {k: owner.use(second).live(app["app_id"])["totals"][k] for k in counts} == counts

        # Both processes persist the same shared readings; so does the command. Nothing doubles.
        summary = owner.wait_for_usage(app["app_id"], {"peak_tabs": 4})
        owner.use(second).usage(app["app_id"])
        first.manage("rollup_usage")
        summary = owner.use(second).usage(app["app_id"])["summary"]
        assert {k: summary[k] for k in counts} == counts
        assert (summary["peak_sockets"], summary["peak_tabs"]) == (2, 4)
        assert {k: owner.usage(app["app_id"], "30d")["summary"][k] for k in counts} == counts
        worker.close()
    finally:
        second.stop()
        first.stop()
