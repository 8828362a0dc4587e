"""The benchmark's small mode runs end to end against every server (a smoke test, no timings)."""

import pytest

from bench import report, runner, scenarios
from bench.profiles import SMALL

# One module-wide run starts about six servers; on a shared 2-core machine that takes minutes.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def results():
    return runner.run(SMALL, only=None, pin=True, log=lambda line: None)


SERVERS = ["raw websockets (a)", "naive Channels (b) uvicorn", "Tabcast uvicorn", "Tabcast daphne"]


def delivered(fanout) -> int:
    """Deliveries a fan-out row counted: its rate is deliveries / seconds."""
    return round(fanout.value * fanout.detail["seconds"])


def assert_every_delivery(fanout, subscribers: int) -> None:
    assert "incomplete" not in fanout.detail, fanout.detail
    assert fanout.detail["publish_errors"] == 0, fanout.detail
    # Not just "some": each of the row's messages reached each subscriber, and the rate is made of them.
    assert fanout.detail["messages"] >= SMALL.min_messages
    assert delivered(fanout) == fanout.detail["messages"] * subscribers, fanout.detail


@pytest.mark.parametrize("server", SERVERS)
def test_every_subscriber_gets_every_message(results, server):
    measured = results["servers"][server]
    for size in SMALL.fanout_subscribers:
        assert_every_delivery(measured[f"fanout_{size}"], size)
    latency = measured["latency_p99"].detail
    assert "incomplete" not in latency, latency
    # One latency sample per delivery: every message timed at every one of the idle sockets.
    assert latency["samples"] == latency["messages"] * SMALL.idle_connections, latency
    assert 0 < measured["latency_p50"].value <= measured["latency_p99"].value <= measured["latency_max"].value
    connect = measured["connect"]
    assert "incomplete" not in connect.detail, connect.detail
    assert round(connect.value * connect.detail["seconds"]) == SMALL.burst  # every socket of the burst
    rss = measured["rss"]
    assert "incomplete" not in rss.detail and rss.detail["rss_after_mib"] > 0


@pytest.mark.parametrize("server", ["Tabcast uvicorn", "Tabcast daphne"])
def test_signed_http_publishes_are_accepted(results, server):
    publish = results["servers"][server]["publish"]
    assert publish.value > 0 and publish.detail["errors"] == 0


@pytest.mark.parametrize("server", ["Tabcast uvicorn", "Tabcast daphne"])
def test_the_neighbour_row_samples_every_delivery_of_the_small_tenant(results, server):
    measured = results["servers"][server]
    expected = round(scenarios.NEIGHBOUR_RATE * SMALL.latency_seconds) * scenarios.NEIGHBOUR_SOCKETS
    p99 = measured["neighbour_p99"]
    assert "incomplete" not in p99.detail, p99.detail
    assert p99.detail["idle_samples"] == p99.detail["loaded_samples"] == expected
    assert p99.detail["a_with_b_deliveries_s"] > 0


def test_scaling_rows_run_one_and_two_processes_on_redis(results):
    for key in ("scale_1p", "scale_2p"):
        assert_every_delivery(results["scaling"][key], SMALL.idle_connections)
    for key in ("scale_publish_1p", "scale_publish_2p"):
        assert results["scaling"][key].value > 0
        assert "incomplete" not in results["scaling"][key].detail
    for key in ("scale_publish_1p", "scale_publish_2p"):
        assert results["scaling"][key].detail["errors"] == 0


def test_the_broadcast_floor_is_measured_on_the_same_sockets_count(results):
    floor = results["floor"]
    assert floor["count"] == SMALL.idle_connections
    assert 0 < floor["cpu_ms"] and 0 < floor["wall_ms"]


def test_report_has_each_row_and_ratios_to_the_raw_baseline(results):
    text = report.render(results, SMALL)
    for row in ("fan-out, 20 subscribers", "latency p99", "connect rate", "RSS per idle connection",
                "signed HTTP publishes/s", "neighbour p99", "machine:", "load average", "Floor for the latency rows",
                "projected with a core each"):
        assert row in text
    assert "x)" in text  # ratios to (a)
