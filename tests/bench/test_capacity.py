"""The capacity model (bench/capacity.py): its arithmetic, the tables docs/capacity.md prints from
the committed unit costs, and a small run of its check on real processes and a real cluster
(no timings asserted: the check's ratios are for docs/capacity.md, not for CI)."""

import json
import math
from dataclasses import replace

import pytest

from bench import capacity

UNITS = capacity.units()


def test_the_committed_units_cover_what_the_model_needs():
    data = json.loads(capacity.UNITS_FILE.read_text())
    missing = [name for name in capacity.CALIBRATED if name not in data["units"]]
    assert not missing, f"run `python -m bench.capacity --calibrate`: {missing}"
    for name, unit in UNITS.items():
        assert unit.source, name
        assert math.isfinite(unit.value), name


def test_a_rate_dependent_cost_is_interpolated_and_clamped():
    unit = capacity.Unit(100.0, "µs", "test", ((100, 100.0), (1000, 10.0)))
    assert unit.at(50) == 100.0  # below the lowest rate measured: the lowest's
    assert unit.at(5000) == 10.0  # above the highest: the highest's
    assert unit.at(math.sqrt(100 * 1000)) == pytest.approx(math.sqrt(100 * 10.0))  # log-log
    assert unit.at(None) == 100.0


def test_receiving_processes_per_publish():
    assert capacity.receivers(1, 100) == 1
    assert capacity.receivers(4, 1) == pytest.approx(1)
    assert capacity.receivers(10, 10_000) == pytest.approx(10)  # a big channel reaches every process
    assert capacity.receivers(1000, 100) == pytest.approx(1000 * (1 - 0.999**100))


def test_bigger_deployments_need_more_of_everything():
    plans = [capacity.plan(replace(capacity.BASE, connections=c), UNITS) for c in capacity.SIZES]
    for small, big in zip(plans, plans[1:]):
        assert big["processes"] > small["processes"]
        assert big["shards"] >= small["shards"]
        assert big["memory_gb"] > small["memory_gb"]
    fleet = capacity.Fleet()
    for p in plans:
        assert p["cpu_per_process"] <= fleet.process_cpu_target + 1e-9
        assert p["busiest_shard_cpu"] <= fleet.redis_cpu_target + 1e-9
        assert p["deliveries_per_s"] == p["publishes_per_s"] * p["workload"]["fanout"]


def test_one_app_state_lands_on_one_master():
    many = capacity.plan(replace(capacity.BASE, connections=1_000_000), UNITS)
    one = capacity.plan(replace(capacity.BASE, connections=1_000_000, apps=1), UNITS)
    assert one["one_app_state_cores"] == pytest.approx(many["redis_cpu"]["state"], rel=0.05)
    assert many["one_app_state_cores"] < one["one_app_state_cores"] / 100


def test_the_doc_tables_print(capsys):
    assert capacity.main([]) == 0
    out = capsys.readouterr().out
    for heading in ("## Headline", "## Where the cores go", "## Shapes", "## One app"):
        assert heading in out
    assert "10,000,000" in out


def test_predict_run_counts_the_exact_placement():
    load = capacity.CheckLoad(processes=2, shards=3, connections=4, subscriptions=1, channels=2,
                              publishes_per_s=10, seconds=1)
    sockets = [(0, ["c-0"]), (1, ["c-0"]), (0, ["c-1"]), (0, ["c-1"])]
    pred = capacity.predict_run(load, sockets, {"c-0": 5, "c-1": 3}, [4, 4], {"c-0": 0, "c-1": 2}, UNITS,
                                {"connect": 1, "connecting": 1, "publish": 1, "close": 1})
    assert pred["deliveries"] == 5 * 2 + 3 * 2
    assert pred["spublish"] == [5, 0, 3]
    # Process 0 receives both channels (8 messages, 5 + 6 writes); process 1 only c-0.
    u = {k: x.value for k, x in UNITS.items()}
    rate0 = (4 + 8) / 1
    expected0 = u["proc_idle_cores"] + (4 * UNITS["publish_us"].at(rate0) + 8 * UNITS["msg_us"].at(rate0)
                                        + 11 * u["deliver_us"]) / 1e6
    assert pred["publish"]["process 0"] == pytest.approx(expected0)


@pytest.mark.redis
@pytest.mark.timeout(600)
def test_a_small_check_runs_end_to_end():
    load = capacity.CheckLoad(connections=200, channels=20, publishes_per_s=40, seconds=2)
    result = capacity.check(load, UNITS, log=lambda line: None)
    assert result["published"]["errors"] == 0, result["published"]
    rows = {(r["phase"], r["what"]): r for r in result["rows"]}
    assert rows["publish", "deliveries"]["measured"] == rows["publish", "deliveries"]["predicted"]
    for s in range(load.shards):  # every publish is one SPUBLISH on its channel's master (+ probes)
        spublish = rows["publish", f"Redis master {s}: SPUBLISH"]
        assert spublish["predicted"] <= spublish["measured"] <= spublish["predicted"] + 30, spublish
    for r in result["rows"]:
        assert r["measured"] > 0 and r["predicted"] > 0, r
    assert "| phase | what |" in capacity.check_table(result)
