"""Report each paying tenant's peak physical connections to its Stripe meter, once per closed hour.

The meter aggregates with ``last`` (Stripe has no ``max``), so every hour carries the running
maximum of the billing period so far: the value never falls within a period, whichever event
Stripe takes as last holds the period's peak, and a resent duplicate cannot change the bill.
The maximum restarts with each period.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import stripe
from django.conf import settings
from django.utils import timezone

from . import stripe_gateway
from .models import Subscription, SubscriptionState, UsageReport
from .tenant_peaks import hourly_peaks

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# Persisters write an hour's last readings within a minute or so after it ends (metering.py).
SETTLE = timedelta(minutes=5)
# Stripe rejects meter events whose timestamp is more than 35 days old.
MAX_EVENT_AGE = timedelta(days=35)
# Stripe asks clients to retry these later; other 4xx mean the request itself is wrong.
RETRYABLE_STATUSES = (409, 429)


def hour_floor(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def report_identifier(tenant_id: int, metric: str, window_start: datetime) -> str:
    """The meter event's identifier, the same on every run: Stripe dedupes on it."""
    return f"tabcast-t{tenant_id}-{metric}-{window_start.astimezone(UTC):%Y%m%dT%H}"


def period_windows(period_start: datetime, period_end: datetime, now: datetime) -> list[datetime]:
    """The closed hours of a billing period that can still be reported."""
    # An hour belongs to the period it starts in (the hour straddling a period boundary counts
    # in the new period), and is closed once it ended SETTLE ago.
    first, end = hour_floor(period_start), min(hour_floor(period_end), hour_floor(now - SETTLE))
    oldest = now - MAX_EVENT_AGE
    windows, window = [], first
    while window < end:
        if window >= oldest:
            windows.append(window)
        window += HOUR
    return windows


def running_max(windows: list[datetime], peaks: dict[datetime, int]) -> list[tuple[datetime, int]]:
    """Each window with the highest hourly peak from the first window up to it."""
    highest, values = 0, []
    for window in windows:
        highest = max(highest, peaks.get(window, 0))
        values.append((window, highest))
    return values


def write_period_reports(tenant_id: int, period_start: datetime, period_end: datetime, now: datetime) -> int:
    """Create the missing report rows of one billing period; returns how many were created."""
    windows = period_windows(period_start, period_end, now)
    if not windows:
        return 0
    peaks = hourly_peaks(tenant_id, hour_floor(period_start), windows[-1] + HOUR)
    metric = UsageReport.PEAK_CONNECTIONS
    rows = [UsageReport(tenant_id=tenant_id, metric=metric, window_start=window, period_start=period_start,
                        value=value, identifier=report_identifier(tenant_id, metric, window))
            for window, value in running_max(windows, peaks)]
    existing = set(UsageReport.objects.filter(tenant_id=tenant_id, metric=metric, window_start__in=windows)
                   .values_list("window_start", flat=True))
    new_rows = [row for row in rows if row.window_start not in existing]
    # A report, once written, is never rewritten: what was sent for an hour stays what was sent.
    UsageReport.objects.bulk_create(new_rows, ignore_conflicts=True)
    return len(new_rows)


def billed_states():
    """Subscription states of tenants billed through Stripe now."""
    return (SubscriptionState.objects.filter(status__in=SubscriptionState.BILLABLE_STATUSES)
            .exclude(subscription__stripe_customer_id="").exclude(current_period_start=None)
            .select_related("subscription"))


def write_reports(now: datetime) -> int:
    """Report rows for every billed tenant's current (and just-ended) billing period."""
    created = 0
    for state in billed_states():
        tenant_id = state.subscription.tenant_id
        if state.previous_period_start and state.previous_period_end:
            created += write_period_reports(tenant_id, state.previous_period_start, state.previous_period_end, now)
        created += write_period_reports(tenant_id, state.current_period_start, state.current_period_end, now)
    return created


@dataclass
class SendResult:
    sent: int = 0
    failed: int = 0
    pending: int = 0


def send_pending(now: datetime) -> SendResult:
    """Send pending rows oldest first; a network error or 5xx stops the run, leaving the rest pending."""
    result = SendResult()
    pending = list(UsageReport.objects.filter(status=UsageReport.Status.PENDING).order_by("window_start", "id"))
    customers = dict(Subscription.objects.filter(tenant_id__in={r.tenant_id for r in pending})
                     .values_list("tenant_id", "stripe_customer_id"))
    for index, report in enumerate(pending):
        if not _send(report, customers.get(report.tenant_id, ""), now):
            result.pending = len(pending) - index
            break
        if report.status == UsageReport.Status.SENT:
            result.sent += 1
        else:
            result.failed += 1
    return result


def _send(report: UsageReport, customer_id: str, now: datetime) -> bool:
    """Send one report and record the outcome; False if Stripe could not be reached."""
    timestamp = max(report.window_start, report.period_start)
    if timestamp < now - MAX_EVENT_AGE or not customer_id:
        return _record(report, UsageReport.Status.FAILED, "too old for Stripe" if customer_id else "no customer")
    report.attempts += 1
    try:
        stripe_gateway.send_meter_event(event_name=settings.STRIPE_METER_EVENT_NAME, identifier=report.identifier,
                                        timestamp=timestamp, customer_id=customer_id, value=report.value)
    except stripe.StripeError as exc:
        status = exc.http_status
        if status is None or status >= 500 or status in RETRYABLE_STATUSES:
            log.warning("Meter event %s not sent, will retry: %s", report.identifier, exc.user_message or exc)
            _record(report, UsageReport.Status.PENDING, str(exc.user_message or exc))
            return False
        log.error("Meter event %s rejected by Stripe (%s): %s", report.identifier, status, exc.user_message)
        return _record(report, UsageReport.Status.FAILED, f"{status}: {exc.user_message or exc}")
    report.sent_at = timezone.now()
    return _record(report, UsageReport.Status.SENT, "")


def _record(report: UsageReport, status: str, error: str) -> bool:
    report.status, report.last_error = status, error
    report.save(update_fields=["status", "last_error", "attempts", "sent_at"])
    return True


def report_usage(now: datetime | None = None) -> tuple[int, SendResult]:
    """The hourly job: write the closed hours' rows, then send what is pending."""
    if not stripe_gateway.is_configured():
        return 0, SendResult()
    now = now or timezone.now()
    return write_reports(now), send_pending(now)
