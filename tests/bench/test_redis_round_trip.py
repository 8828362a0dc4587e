"""`python -m bench.redis_round_trip` runs against a redis-server of its own and prints its table."""

import pytest

from bench import redis_round_trip

pytestmark = pytest.mark.redis


def test_the_round_trip_probe_runs(monkeypatch, capsys):
    monkeypatch.setattr(redis_round_trip, "ROUND_TRIPS", 50)
    redis_round_trip.main()
    rows = {line.split(" | ")[0].strip("| "): float(line.rsplit("|", 2)[1]) for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and not line.startswith("| one")}
    assert set(rows) == {"client CPU, redis-py pipeline (median of 5 x 50)", "client CPU, PublishBatches.execute",
                         "redis-server per PUBLISH (batches of 100)",
                         "redis-server per APPEND_AND_PUBLISH (batches of 100)"}
    assert all(value > 0 for value in rows.values())
