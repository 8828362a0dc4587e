"""The Stripe adapter with the real SDK against the recording fake: exact requests, errors, retries."""

from datetime import UTC, datetime

import pytest
import stripe

from billing import stripe_gateway

from .fake_stripe import error


def test_customer_create_sends_tenant_metadata_and_a_stable_idempotency_key(fake_stripe):
    fake_stripe.reply("POST", "/v1/customers", (200, {"id": "cus_A", "object": "customer"}))

    assert stripe_gateway.create_customer(7, "Alice's team") == "cus_A"

    [call] = fake_stripe.calls("POST", "/v1/customers")
    assert call.form == {"name": "Alice's team", "metadata[tenant_id]": "7"}
    assert call.idempotency_key == "tabcast:customer:tenant:7"
    assert call.headers["authorization"] == "Bearer sk_test_tabcast"
    assert call.headers["stripe-version"] == stripe.api_version


def test_checkout_session_has_flat_and_metered_line_items(fake_stripe):
    fake_stripe.reply("POST", "/v1/checkout/sessions",
                      (200, {"id": "cs_1", "object": "checkout.session", "url": "https://checkout.test/cs_1"}))

    url = stripe_gateway.create_checkout_session(
        customer_id="cus_A", tenant_id=7, plan_code="pro", price_ids=["price_flat"],
        metered_price_ids=["price_meter"], success_url="https://t.test/ok", cancel_url="https://t.test/no",
        attempt="a1b2")

    assert url == "https://checkout.test/cs_1"
    [call] = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert call.form == {
        "mode": "subscription", "customer": "cus_A", "client_reference_id": "7",
        "line_items[0][price]": "price_flat", "line_items[0][quantity]": "1",
        "line_items[1][price]": "price_meter",
        "success_url": "https://t.test/ok", "cancel_url": "https://t.test/no",
        "metadata[tenant_id]": "7", "metadata[plan_code]": "pro",
        "subscription_data[metadata][tenant_id]": "7", "subscription_data[metadata][plan_code]": "pro",
    }
    assert call.idempotency_key == "tabcast:checkout:tenant:7:pro:a1b2"


def test_meter_event_uses_its_identifier_as_idempotency_key(fake_stripe):
    fake_stripe.reply("POST", "/v1/billing/meter_events", (200, {"object": "billing.meter_event"}))
    when = datetime(2026, 11, 25, 14, tzinfo=UTC)

    stripe_gateway.send_meter_event(event_name="tabcast_peak_connections", identifier="t7-peak-2026112514",
                                    timestamp=when, customer_id="cus_A", value=1500)

    [call] = fake_stripe.calls("POST", "/v1/billing/meter_events")
    assert call.form == {"event_name": "tabcast_peak_connections", "identifier": "t7-peak-2026112514",
                         "timestamp": str(int(when.timestamp())),
                         "payload[stripe_customer_id]": "cus_A", "payload[value]": "1500"}
    assert call.idempotency_key == "t7-peak-2026112514"


def test_a_500_is_retried_once_with_the_same_idempotency_key(fake_stripe):
    fake_stripe.reply("POST", "/v1/customers",
                      (500, error("Something went wrong", "api_error")), (200, {"id": "cus_B", "object": "customer"}))

    assert stripe_gateway.create_customer(8, "Bob's team") == "cus_B"

    calls = fake_stripe.calls("POST", "/v1/customers")
    assert len(calls) == 2
    assert calls[0].idempotency_key == calls[1].idempotency_key == "tabcast:customer:tenant:8"
    assert calls[0].body == calls[1].body


def test_a_400_is_not_retried_and_raises_invalid_request(fake_stripe):
    fake_stripe.reply("POST", "/v1/billing/meter_events", (400, error("No such customer: 'cus_gone'")))

    with pytest.raises(stripe.InvalidRequestError, match="No such customer"):
        stripe_gateway.send_meter_event(event_name="e", identifier="i1", timestamp=datetime.now(UTC),
                                        customer_id="cus_gone", value=1)
    assert len(fake_stripe.calls("POST", "/v1/billing/meter_events")) == 1


def test_portal_session_and_subscription_retrieve(fake_stripe):
    fake_stripe.reply("POST", "/v1/billing_portal/sessions",
                      (200, {"id": "bps_1", "object": "billing_portal.session", "url": "https://portal.test/1"}))
    fake_stripe.reply("GET", "/v1/subscriptions/sub_1", (200, {"id": "sub_1", "object": "subscription",
                                                               "status": "active"}))

    assert stripe_gateway.create_portal_session("cus_A", "https://t.test/back") == "https://portal.test/1"
    assert fake_stripe.calls("POST", "/v1/billing_portal/sessions")[0].form == {
        "customer": "cus_A", "return_url": "https://t.test/back"}
    assert stripe_gateway.retrieve_subscription("sub_1").status == "active"


def test_without_a_secret_key_nothing_calls_stripe(unconfigured):
    assert not stripe_gateway.is_configured()
    with pytest.raises(stripe_gateway.BillingNotConfigured):
        stripe_gateway.create_customer(1, "x")
