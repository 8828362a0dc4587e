"""The benchmark's small mode runs end to end against every server (a smoke test, no timings)."""

import pytest

from bench import report, runner
from bench.profiles import SMALL

# One module-wide run starts about six servers; on a shared 2-core machine that takes minutes.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def results():
    return runner.run(SMALL, only=None, pin=True, log=lambda line: None)


SERVERS = ["raw websockets (a)", "naive Channels (b) uvicorn", "Tabcast uvicorn", "Tabcast daphne"]


@pytest.mark.parametrize("server", SERVERS)
def test_every_subscriber_gets_every_message(results, server):
    measured = results["servers"][server]
    for size in SMALL.fanout_subscribers:
        fanout = measured[f"fanout_{size}"]
        assert fanout.value > 0
        assert "incomplete" not in fanout.detail, fanout.detail
    assert measured["latency_p50"].value <= measured["latency_p99"].value <= measured["latency_max"].value
    assert "incomplete" not in measured["connect"].detail, measured["connect"].detail
    assert measured["connect"].value > 0
    assert measured["rss"].detail["rss_after_mib"] > 0


@pytest.mark.parametrize("server", ["Tabcast uvicorn", "Tabcast daphne"])
def test_signed_http_publishes_are_accepted(results, server):
    publish = results["servers"][server]["publish"]
    assert publish.value > 0 and publish.detail["errors"] == 0


def test_scaling_rows_run_one_and_two_processes_on_redis(results):
    for key in ("scale_1p", "scale_2p", "scale_publish_1p", "scale_publish_2p"):
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
                "signed HTTP publishes/s", "machine:", "load average", "Floor for the latency rows",
                "projected with a core each"):
        assert row in text
    assert "x)" in text  # ratios to (a)
