"""Hourly usage reports: the period's running peak, reset each period, sent once per identifier."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.models import HourlyUsage, Plan, Subscription, SubscriptionState, UsageReport
from billing.usage_reporting import report_identifier, report_usage
from tenants import services

from .fake_stripe import error

pytestmark = pytest.mark.django_db

PERIOD_START = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
METER_EVENTS = ("POST", "/v1/billing/meter_events")


def h(day, hour) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.fixture
def billed(alice_tenant):
    """Alice's team pays for Pro through Stripe, in the period PERIOD_START..PERIOD_END."""
    row = Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="pro"),
                                      stripe_customer_id="cus_A", stripe_subscription_id="sub_1")
    return SubscriptionState.objects.create(subscription=row, status="active", current_period_start=PERIOD_START,
                                            current_period_end=PERIOD_END)


@pytest.fixture
def apps(alice_tenant):
    return [services.create_app(name, tenant=alice_tenant) for name in ("web", "admin")]


def peak(app, hour, sockets, tabs=0, source="s1"):
    HourlyUsage.objects.create(app=app, hour=hour, source=source, peak_sockets=sockets, peak_tabs=tabs)


def values(tenant) -> list[tuple[datetime, int]]:
    return list(UsageReport.objects.filter(tenant=tenant).order_by("window_start")
                .values_list("window_start", "value"))


def test_each_closed_hour_reports_the_running_peak_of_the_period(fake_stripe, billed, apps, alice_tenant):
    fake_stripe.reply(*METER_EVENTS, (200, {"object": "billing.meter_event"}))
    web, admin = apps
    peak(web, h(1, 9), 500)  # the hour the period starts in counts in this period
    peak(web, h(1, 10), 30)
    peak(admin, h(1, 10), 40)
    peak(web, h(1, 11), 700)
    peak(web, h(1, 11), 650, source="s2")  # two stores reported the hour: its peak is the higher
    peak(web, h(1, 12), 10)

    report_usage(now=h(1, 13) + timedelta(minutes=5))

    assert values(alice_tenant) == [(h(1, 9), 500), (h(1, 10), 500), (h(1, 11), 700), (h(1, 12), 700)]
    sent = [call.form for call in fake_stripe.calls(*METER_EVENTS)]
    assert [form["payload[value]"] for form in sent] == ["500", "500", "700", "700"]
    # The straddling hour's event is dated inside the period, so Stripe bills it in this one.
    assert sent[0]["timestamp"] == str(int(PERIOD_START.timestamp()))
    assert sent[1]["timestamp"] == str(int(h(1, 10).timestamp()))
    assert {form["payload[stripe_customer_id]"] for form in sent} == {"cus_A"}
    assert {form["event_name"] for form in sent} == {"tabcast_peak_connections"}


def test_apps_of_the_same_hour_add_up(fake_stripe, billed, apps, alice_tenant):
    fake_stripe.reply(*METER_EVENTS, (200, {}))
    web, admin = apps
    peak(web, h(2, 10), 300)
    peak(admin, h(2, 10), 200)

    report_usage(now=h(2, 11) + timedelta(minutes=5))

    assert dict(values(alice_tenant))[h(2, 10)] == 500


def test_an_hour_is_reported_only_once_it_has_settled(fake_stripe, billed, apps, alice_tenant):
    fake_stripe.reply(*METER_EVENTS, (200, {}))
    report_usage(now=h(1, 11) + timedelta(minutes=2))
    assert [w for w, _ in values(alice_tenant)] == [h(1, 9)]


def test_other_tenants_usage_is_not_counted(fake_stripe, billed, apps, alice_tenant, bob_tenant):
    fake_stripe.reply(*METER_EVENTS, (200, {}))
    peak(apps[0], h(1, 10), 5)
    peak(services.create_app("bob's", tenant=bob_tenant), h(1, 10), 9000)

    report_usage(now=h(1, 11) + timedelta(minutes=5))

    assert values(alice_tenant) == [(h(1, 9), 0), (h(1, 10), 5)]
    assert not UsageReport.objects.filter(tenant=bob_tenant).exists()


def test_the_peak_restarts_with_a_new_period(fake_stripe, billed, apps, alice_tenant):
    fake_stripe.reply(*METER_EVENTS, (200, {}))
    web = apps[0]
    peak(web, h(30, 23), 900)
    peak(web, datetime(2026, 12, 1, 9, tzinfo=UTC), 40)  # straddles the boundary: new period
    peak(web, datetime(2026, 12, 1, 10, tzinfo=UTC), 60)
    # The webhook moved the period on; the previous one (shortened here to keep the test quick) stays.
    billed.previous_period_start, billed.previous_period_end = h(30, 20), PERIOD_END
    billed.current_period_start, billed.current_period_end = PERIOD_END, datetime(2027, 1, 1, 9, 30, tzinfo=UTC)
    billed.save()

    report_usage(now=datetime(2026, 12, 1, 11, 5, tzinfo=UTC))

    by_window = dict(values(alice_tenant))
    assert by_window[datetime(2026, 12, 1, 8, tzinfo=UTC)] == 900  # the old period's last hour
    assert by_window[datetime(2026, 12, 1, 9, tzinfo=UTC)] == 40
    assert by_window[datetime(2026, 12, 1, 10, tzinfo=UTC)] == 60
    assert by_window[h(30, 22)] == 0 and by_window[h(30, 23)] == 900
    new_period = UsageReport.objects.filter(tenant=alice_tenant, period_start=PERIOD_END)
    assert sorted(new_period.values_list("value", flat=True)) == [40, 60]


def test_identifiers_are_deterministic_and_reruns_send_nothing_new(fake_stripe, billed, apps, alice_tenant):
    fake_stripe.reply(*METER_EVENTS, (200, {}))
    peak(apps[0], h(1, 10), 80)
    now = h(1, 11) + timedelta(minutes=5)

    report_usage(now=now)
    first = list(UsageReport.objects.values_list("identifier", "value", "status"))
    report_usage(now=now)

    assert list(UsageReport.objects.values_list("identifier", "value", "status")) == first
    assert len(fake_stripe.calls(*METER_EVENTS)) == 2
    identifier = report_identifier(alice_tenant.id, "peak_connections", h(1, 10))
    assert identifier == f"tabcast-t{alice_tenant.id}-peak_connections-20261101T10"
    assert [c.idempotency_key for c in fake_stripe.calls(*METER_EVENTS)][1] == identifier


def test_a_5xx_keeps_rows_pending_and_the_next_run_resends_the_same_identifier(
        fake_stripe, settings, billed, apps, alice_tenant, monkeypatch):
    monkeypatch.setattr("billing.stripe_gateway.MAX_NETWORK_RETRIES", 0)
    fake_stripe.reply(*METER_EVENTS, (503, error("Stripe is down", "api_error")), (200, {}))
    now = h(1, 10) + timedelta(minutes=5)

    _, result = report_usage(now=now)
    report = UsageReport.objects.get(tenant=alice_tenant)
    assert (report.status, report.attempts, result.pending) == ("pending", 1, 1)
    assert "Stripe is down" in report.last_error

    report_usage(now=now)
    report.refresh_from_db()
    assert report.status == "sent" and report.sent_at is not None
    keys = [c.idempotency_key for c in fake_stripe.calls(*METER_EVENTS)]
    assert keys == [report.identifier, report.identifier]


def test_a_400_marks_the_row_failed_with_stripes_message(fake_stripe, billed, apps, alice_tenant):
    fake_stripe.reply(*METER_EVENTS, (400, error("No active meter found for event name", code="resource_missing")))

    _, result = report_usage(now=h(1, 10) + timedelta(minutes=5))

    report = UsageReport.objects.get(tenant=alice_tenant)
    assert report.status == "failed" and result.failed == 1
    assert report.last_error.startswith("400: No active meter found")
    report_usage(now=h(1, 10) + timedelta(minutes=6))
    assert len(fake_stripe.calls(*METER_EVENTS)) == 1  # failed rows are not resent


def test_a_429_stays_pending(fake_stripe, billed, apps, alice_tenant, monkeypatch):
    monkeypatch.setattr("billing.stripe_gateway.MAX_NETWORK_RETRIES", 0)
    fake_stripe.reply(*METER_EVENTS, (429, error("Too many requests", "rate_limit_error")))
    report_usage(now=h(1, 10) + timedelta(minutes=5))
    assert UsageReport.objects.get(tenant=alice_tenant).status == "pending"


def test_tenants_without_a_billable_subscription_are_not_reported(fake_stripe, billed, apps, alice_tenant):
    billed.status = "canceled"
    billed.save()
    report_usage(now=h(1, 12))
    assert not UsageReport.objects.exists() and not fake_stripe.requests


def test_the_command_refuses_without_a_stripe_key(unconfigured):
    with pytest.raises(CommandError, match="not configured"):
        call_command("report_usage")


def test_the_command_reports_the_closed_hours_until_now(fake_stripe, billed, apps, capsys):
    fake_stripe.reply(*METER_EVENTS, (200, {}))
    now = timezone.now()
    billed.current_period_start, billed.current_period_end = now - timedelta(hours=3), now + timedelta(days=30)
    billed.save()

    call_command("report_usage")

    sent = UsageReport.objects.filter(status="sent").count()
    assert sent in (2, 3)  # 3 closed hours, the last one settled unless the hour began < 5 min ago
    assert capsys.readouterr().out.startswith(f"{sent} new hourly reports; sent {sent}, failed 0")


def test_an_unreachable_stripe_keeps_rows_pending(fake_stripe, settings, billed, apps, alice_tenant, monkeypatch):
    import socket

    monkeypatch.setattr("billing.stripe_gateway.MAX_NETWORK_RETRIES", 0)
    with socket.socket() as closed:  # a port that was just free: nothing listens on it
        closed.bind(("127.0.0.1", 0))
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed.getsockname()[1]}"

    _, result = report_usage(now=h(1, 10) + timedelta(minutes=5))

    report = UsageReport.objects.get(tenant=alice_tenant)
    assert (report.status, report.attempts, result.pending) == ("pending", 1, 1)
    assert report.last_error
