"""The whole path once: upgrade on the page, Stripe's webhook, the new cap, the hourly meter event."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import HourlyUsage, Plan, PlanPricing, UsageReport
from billing.services import connection_limit
from billing.usage_reporting import report_usage
from tenants import services

from .stripe_payloads import checkout_session, event, post_event, subscription

pytestmark = pytest.mark.django_db


def test_upgrade_webhook_cap_and_usage(fake_stripe, alice_client, alice_tenant):
    for code in ("pro", "business"):
        Plan.objects.filter(code=code).update(stripe_price_id=f"price_{code}")
        PlanPricing.objects.filter(plan__code=code).update(stripe_metered_price_id=f"price_{code}_meter")
    app = services.create_app("web", tenant=alice_tenant)
    fake_stripe.reply("POST", "/v1/customers", (200, {"id": "cus_A", "object": "customer"}))
    fake_stripe.reply("POST", "/v1/checkout/sessions",
                      (200, {"id": "cs_1", "object": "checkout.session", "url": "https://checkout.test/cs_1"}))
    now = timezone.now()
    period_start = int((now - timedelta(hours=3)).timestamp())
    fake_stripe.reply("GET", "/v1/subscriptions/sub_1",
                      (200, subscription(start=period_start, end=period_start + 30 * 86400)))
    fake_stripe.reply("POST", "/v1/billing/meter_events", (200, {"object": "billing.meter_event"}))

    # 1. The owner upgrades and is sent to Stripe Checkout.
    page = alice_client.get("/dashboard/billing/").content.decode()
    attempt = re.search(r'name="attempt" value="(\w+)"', page).group(1)
    response = alice_client.post("/dashboard/billing/checkout/", {"plan": "pro", "attempt": attempt})
    assert response.status_code == 303 and response["Location"] == "https://checkout.test/cs_1"
    assert connection_limit(alice_tenant.id) == 100  # Free until Stripe confirms

    # 2. Stripe confirms through the signed webhook: Pro's cap applies.
    post_event(Client(), event("checkout.session.completed", checkout_session(alice_tenant.id),
                               created=int(now.timestamp())))
    assert connection_limit(alice_tenant.id) == 5_000

    # 3. Usage in the period goes to the meter as the running peak of physical connections.
    last_closed_hour = (now - timedelta(minutes=5)).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    HourlyUsage.objects.create(app=app, hour=last_closed_hour, source="s", peak_sockets=2500, peak_tabs=7000)
    report_usage(now=now)

    report = UsageReport.objects.get(tenant=alice_tenant, window_start=last_closed_hour)
    assert (report.value, report.status) == (2500, "sent")
    sent = fake_stripe.calls("POST", "/v1/billing/meter_events")[-1]
    assert sent.form["payload[stripe_customer_id]"] == "cus_A" and sent.form["payload[value]"] == "2500"
    assert sent.idempotency_key == report.identifier
    page = alice_client.get("/dashboard/billing/").content.decode()
    assert 'id="peak-sockets">2,500<' in page and 'id="peak-tabs">7,000<' in page
