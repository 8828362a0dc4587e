"""A tenant's peak concurrent connections per hour, from the metering rollups of all its apps."""

from datetime import datetime

from django.db.models import Max

from .models import HourlyUsage


def hourly_peaks(tenant_id: int, start: datetime, end: datetime, field: str = "peak_sockets") -> dict[datetime, int]:
    """The tenant's peak per hour in [start, end): ``peak_sockets`` (physical) or ``peak_tabs`` (logical)."""
    # Metering records each app's peak per hour (the highest reading over the stores that
    # reported it); the tenant's hour is the sum over its apps. Apps may peak at different
    # moments of the hour, so the sum is an upper bound of the simultaneous total, exact when
    # they peak together.
    per_app = (HourlyUsage.objects.filter(app__tenant_id=tenant_id, hour__gte=start, hour__lt=end)
               .values("hour", "app_id").annotate(peak=Max(field)))
    peaks: dict[datetime, int] = {}
    for row in per_app:
        peaks[row["hour"]] = peaks.get(row["hour"], 0) + row["peak"]
    return peaks


def period_peak(tenant_id: int, start: datetime, end: datetime) -> tuple[int, int]:
    """The highest hourly peak of physical connections and of logical tabs in a period."""
    # Like usage reporting, the hour a period starts in belongs to that period.
    start = start.replace(minute=0, second=0, microsecond=0)
    sockets = hourly_peaks(tenant_id, start, end, "peak_sockets")
    tabs = hourly_peaks(tenant_id, start, end, "peak_tabs")
    return max(sockets.values(), default=0), max(tabs.values(), default=0)
