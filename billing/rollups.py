"""Persisted usage: upsert hourly readings of the live counters, derive days, read series.

Live counters (``ClusterState.usage``) are absolute per hour and only grow, so a reading is
stored as is, and a stored value is only ever raised (``Greatest``): persisting the same
reading twice, or from two processes in either order, cannot count anything twice.
"""

from datetime import UTC, date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Max, Sum, Value
from django.db.models.functions import Greatest, Now

from .models import DailyUsage, HourlyUsage, UsageCounters

FIELDS = UsageCounters.COUNTERS + UsageCounters.PEAKS


def hour_start(hour: int) -> datetime:
    """The start of a state bucket's hour (unix time // 3600) as an aware UTC datetime."""
    return datetime.fromtimestamp(hour * 3600, UTC)


def persist_buckets(app_id: int, source: str, buckets: list[dict]) -> None:
    """Store the readings of one counter store for an app, then refresh the days they touch."""
    days = set()
    for bucket in buckets:
        when = hour_start(bucket["hour"])
        values = {name: bucket.get(name, 0) for name in FIELDS}
        _raise_hour(app_id, when, source, values)
        days.add(when.date())
    for day in sorted(days):
        refresh_day(app_id, day)


def _raise_hour(app_id: int, when: datetime, source: str, values: dict) -> None:
    row = HourlyUsage.objects.filter(app_id=app_id, hour=when, source=source)
    raised = {name: Greatest(F(name), Value(value)) for name, value in values.items()}
    raised["updated_at"] = Now()
    if row.update(**raised):
        return
    try:
        with transaction.atomic():
            HourlyUsage.objects.create(app_id=app_id, hour=when, source=source, **values)
    except IntegrityError:  # another process created it a moment ago
        row.update(**raised)


def refresh_day(app_id: int, day: date) -> None:
    """Recompute a day row from its hour rows: counters add up, peaks are the highest hour."""
    start = datetime.combine(day, time(0), UTC)
    totals = HourlyUsage.objects.filter(app_id=app_id, hour__gte=start, hour__lt=start + timedelta(days=1)) \
        .aggregate(**{n: Sum(n) for n in UsageCounters.COUNTERS}, **{n: Max(n) for n in UsageCounters.PEAKS})
    DailyUsage.objects.update_or_create(app_id=app_id, day=day,
                                        defaults={n: totals[n] or 0 for n in FIELDS})


def hourly_series(app_id: int, hours: int, now: datetime) -> list[dict]:
    """The last ``hours`` hours up to ``now``, oldest first, with empty hours as zeros."""
    last = now.replace(minute=0, second=0, microsecond=0)
    first = last - timedelta(hours=hours - 1)
    rows = HourlyUsage.objects.filter(app_id=app_id, hour__gte=first).values("hour").annotate(
        **{n: Sum(n) for n in UsageCounters.COUNTERS}, **{n: Max(n) for n in UsageCounters.PEAKS})
    by_hour = {row["hour"]: row for row in rows}
    return [_point(at, by_hour.get(at)) for at in (first + timedelta(hours=i) for i in range(hours))]


def daily_series(app_id: int, days: int, now: datetime) -> list[dict]:
    """The last ``days`` UTC days up to today, oldest first, with empty days as zeros."""
    today = now.date()
    first = today - timedelta(days=days - 1)
    by_day = {row["day"]: row for row in DailyUsage.objects.filter(app_id=app_id, day__gte=first).values()}
    return [_point(datetime.combine(d, time(0), UTC), by_day.get(d))
            for d in (first + timedelta(days=i) for i in range(days))]


def _point(at: datetime, row: dict | None) -> dict:
    return {"start": at, **{n: (row or {}).get(n) or 0 for n in FIELDS}}


def summarize(points: list[dict]) -> dict:
    """One usage summary of a series: counters add up, peaks are the highest point."""
    return {**{n: sum(p[n] for p in points) for n in UsageCounters.COUNTERS},
            **{n: max((p[n] for p in points), default=0) for n in UsageCounters.PEAKS}}
