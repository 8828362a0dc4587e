"""The in-process hourly reporter: when it runs, and that one failed run does not stop it."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from billing import usage_schedule
from billing.usage_reporting import SendResult


def test_next_run_is_the_next_seven_past_the_hour():
    assert usage_schedule.next_run(datetime(2026, 11, 25, 14, 3, tzinfo=UTC)) == datetime(2026, 11, 25, 14, 7,
                                                                                            tzinfo=UTC)
    assert usage_schedule.next_run(datetime(2026, 11, 25, 14, 7, tzinfo=UTC)) == datetime(2026, 11, 25, 15, 7,
                                                                                            tzinfo=UTC)
    assert usage_schedule.next_run(datetime(2026, 11, 25, 23, 59, tzinfo=UTC)) == datetime(2026, 11, 26, 0, 7,
                                                                                             tzinfo=UTC)


async def test_it_reports_each_hour_and_survives_a_failing_run(monkeypatch):
    clock = [datetime(2026, 11, 25, 14, 3, tzinfo=UTC)]
    waits, runs = [], []

    async def sleep(seconds):
        waits.append(seconds)
        clock[0] += timedelta(seconds=seconds)
        if len(waits) > 3:
            raise asyncio.CancelledError

    def report_usage():
        runs.append(clock[0])
        if len(runs) == 1:
            raise RuntimeError("database unavailable")
        return 0, SendResult()

    monkeypatch.setattr("billing.usage_reporting.report_usage", report_usage)
    with pytest.raises(asyncio.CancelledError):
        await usage_schedule.report_hourly(clock=lambda: clock[0], sleep=sleep)

    assert waits == [240, 3600, 3600, 3600]
    assert runs == [datetime(2026, 11, 25, h, 7, tzinfo=UTC) for h in (14, 15, 16)]
