"""Persisted rollups: absolute readings upserted, never counted twice; days aggregate hours."""

from datetime import UTC, datetime

from billing.models import DailyUsage, HourlyUsage
from billing.rollups import persist_buckets

HOUR = int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp()) // 3600


def bucket(hour=HOUR, **values):
    return {"hour": hour, "messages": 0, "deliveries": 0, "bytes": 0, "logical_deliveries": 0,
            "logical_bytes": 0, "tab_seconds": 0.0, "peak_sockets": 0, "peak_tabs": 0, **values}


def test_same_reading_twice_is_stored_once(alice_app):
    reading = [bucket(messages=5, deliveries=15, peak_sockets=3, peak_tabs=7)]
    persist_buckets(alice_app.id, "redis-a", reading)
    persist_buckets(alice_app.id, "redis-a", reading)
    row = HourlyUsage.objects.get(app=alice_app)
    assert (row.messages, row.deliveries, row.peak_sockets, row.peak_tabs) == (5, 15, 3, 7)


def test_later_reading_replaces_an_older_one(alice_app):
    persist_buckets(alice_app.id, "redis-a", [bucket(messages=5)])
    persist_buckets(alice_app.id, "redis-a", [bucket(messages=9)])
    assert HourlyUsage.objects.get(app=alice_app).messages == 9


def test_stale_reading_from_a_slower_process_never_lowers_a_row(alice_app):
    persist_buckets(alice_app.id, "redis-a", [bucket(messages=9, peak_tabs=4)])
    persist_buckets(alice_app.id, "redis-a", [bucket(messages=5, peak_tabs=2)])
    row = HourlyUsage.objects.get(app=alice_app)
    assert (row.messages, row.peak_tabs) == (9, 4)


def test_a_restarted_store_adds_to_the_hour_instead_of_overwriting_it(alice_app):
    persist_buckets(alice_app.id, "memory-before-restart", [bucket(messages=100, peak_sockets=10)])
    persist_buckets(alice_app.id, "memory-after-restart", [bucket(messages=5, peak_sockets=2)])
    day = DailyUsage.objects.get(app=alice_app)
    assert day.messages == 105
    assert day.peak_sockets == 10


def test_day_sums_hours_and_keeps_the_highest_peak(alice_app):
    persist_buckets(alice_app.id, "redis-a", [
        bucket(HOUR, messages=1, bytes=10, tab_seconds=1.5, peak_sockets=1, peak_tabs=3),
        bucket(HOUR + 1, messages=2, bytes=20, tab_seconds=2.5, peak_sockets=4, peak_tabs=2),
    ])
    day = DailyUsage.objects.get(app=alice_app)
    assert (day.day, day.messages, day.bytes, day.tab_seconds) == (datetime(2026, 11, 20).date(), 3, 30, 4.0)
    assert (day.peak_sockets, day.peak_tabs) == (4, 3)


def test_hours_of_two_days_make_two_day_rows(alice_app):
    midnight = int(datetime(2026, 11, 21, tzinfo=UTC).timestamp()) // 3600
    persist_buckets(alice_app.id, "redis-a", [bucket(midnight - 1, messages=1), bucket(midnight, messages=2)])
    assert dict(DailyUsage.objects.values_list("day", "messages")) == {
        datetime(2026, 11, 20).date(): 1, datetime(2026, 11, 21).date(): 2}


def test_rows_are_per_app(alice_app, bob_app):
    persist_buckets(alice_app.id, "redis-a", [bucket(messages=1)])
    persist_buckets(bob_app.id, "redis-a", [bucket(messages=2)])
    assert HourlyUsage.objects.get(app=alice_app).messages == 1
    assert HourlyUsage.objects.get(app=bob_app).messages == 2
