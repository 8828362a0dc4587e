"""Stripe's webhook endpoint: signatures, one application per event, plans and caps follow Stripe."""

import json
import time

import pytest
import stripe
from django.test import Client

from billing.models import Plan, ProcessedStripeEvent, Subscription, SubscriptionState
from billing.services import connection_limit

from .stripe_payloads import PERIOD_END, PERIOD_START, checkout_session, event, invoice, post_event, subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced_plans(db):
    """Pro and Business with their Stripe price ids configured."""
    Plan.objects.filter(code="pro").update(stripe_price_id="price_pro")
    Plan.objects.filter(code="business").update(stripe_price_id="price_business")


@pytest.fixture
def alice_customer(alice_tenant, priced_plans):
    """Alice's team has a Stripe customer (made when she opened checkout) and is on Free."""
    return Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="free"),
                                       stripe_customer_id="cus_A")


def plan_code(tenant) -> str:
    return Subscription.objects.get(tenant=tenant).plan.code


def state_of(tenant) -> SubscriptionState:
    return SubscriptionState.objects.get(subscription__tenant=tenant)


def test_the_endpoint_needs_no_csrf_token_only_the_signature(fake_stripe, alice_customer, alice_tenant):
    response = post_event(Client(enforce_csrf_checks=True), event("customer.subscription.created", subscription()))
    assert response.status_code == 200 and plan_code(alice_tenant) == "pro"


def test_get_is_not_allowed(fake_stripe):
    assert Client().get("/dashboard/billing/stripe/webhook").status_code == 405


def test_a_bad_signature_is_a_400_and_changes_nothing(fake_stripe, alice_customer, alice_tenant):
    response = post_event(Client(), event("customer.subscription.updated", subscription()), secret="whsec_wrong")
    assert response.status_code == 400
    assert plan_code(alice_tenant) == "free" and not ProcessedStripeEvent.objects.exists()


def test_a_tampered_body_is_a_400(fake_stripe, alice_customer):
    body = json.dumps(event("customer.subscription.updated", subscription()))
    header = stripe.WebhookSignature.generate_signature_header(body, "whsec_test_tabcast")
    response = Client().post("/dashboard/billing/stripe/webhook", body.replace("active", "trialing"),
                             content_type="application/json", headers={"Stripe-Signature": header})
    assert response.status_code == 400


def test_a_missing_signature_is_a_400(fake_stripe):
    response = Client().post("/dashboard/billing/stripe/webhook", "{}", content_type="application/json")
    assert response.status_code == 400


def test_a_signature_older_than_five_minutes_is_a_400(fake_stripe, alice_customer, alice_tenant):
    response = post_event(Client(), event("customer.subscription.updated", subscription()),
                          timestamp=time.time() - 301)
    assert response.status_code == 400
    assert plan_code(alice_tenant) == "free"


def test_without_a_webhook_secret_the_endpoint_is_unavailable(unconfigured):
    response = post_event(Client(), event("customer.subscription.updated", subscription()))
    assert response.status_code == 503


def test_checkout_completed_links_the_subscription_and_sets_the_plan_from_its_price(
        fake_stripe, alice_customer, alice_tenant):
    fake_stripe.reply("GET", "/v1/subscriptions/sub_1", (200, subscription(price="price_business")))

    response = post_event(Client(), event("checkout.session.completed", checkout_session(alice_tenant.id)))

    assert response.status_code == 200 and response.json()["applied"] is True
    row = Subscription.objects.get(tenant=alice_tenant)
    assert (row.plan.code, row.stripe_subscription_id) == ("business", "sub_1")
    state = state_of(alice_tenant)
    assert state.status == "active"
    assert int(state.current_period_start.timestamp()) == PERIOD_START
    assert int(state.current_period_end.timestamp()) == PERIOD_END
    assert connection_limit(alice_tenant.id) == 50_000


def test_checkout_for_another_tenants_customer_is_ignored(fake_stripe, alice_customer, bob_tenant, alice_tenant):
    fake_stripe.reply("GET", "/v1/subscriptions/sub_1", (200, subscription()))
    Subscription.objects.create(tenant=bob_tenant, plan=Plan.objects.get(code="free"), stripe_customer_id="cus_B")

    response = post_event(Client(), event("checkout.session.completed", checkout_session(bob_tenant.id)))

    assert response.json()["applied"] is False
    assert plan_code(bob_tenant) == "free" and plan_code(alice_tenant) == "free"


def test_the_same_event_twice_is_applied_once(fake_stripe, alice_customer, alice_tenant):
    fake_stripe.reply("GET", "/v1/subscriptions/sub_1", (200, subscription()))
    payload = event("checkout.session.completed", checkout_session(alice_tenant.id), event_id="evt_dup")

    first, second = post_event(Client(), payload), post_event(Client(), payload)

    assert first.json()["applied"] is True and second.json()["applied"] is False
    assert len(fake_stripe.calls("GET", "/v1/subscriptions/sub_1")) == 1
    assert ProcessedStripeEvent.objects.filter(event_id="evt_dup").count() == 1


def test_a_failing_stripe_call_leaves_the_event_unprocessed_for_stripe_to_resend(
        fake_stripe, alice_customer, alice_tenant):
    from .fake_stripe import error

    fake_stripe.reply("GET", "/v1/subscriptions/sub_1", (400, error("No such subscription")))
    payload = event("checkout.session.completed", checkout_session(alice_tenant.id))

    with pytest.raises(Exception, match="No such subscription"):
        post_event(Client(raise_request_exception=True), payload)
    assert not ProcessedStripeEvent.objects.exists()


def test_subscription_updated_changes_plan_and_cap(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.created", subscription(), event_id="evt_1"))
    assert connection_limit(alice_tenant.id) == 5_000

    post_event(Client(), event("customer.subscription.updated", subscription(price="price_business"),
                               event_id="evt_2", created=PERIOD_START + 120))

    assert plan_code(alice_tenant) == "business" and connection_limit(alice_tenant.id) == 50_000


def test_subscription_deleted_goes_back_to_free_with_a_lower_cap(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.created", subscription(), event_id="evt_1"))
    assert connection_limit(alice_tenant.id) == 5_000

    post_event(Client(), event("customer.subscription.deleted", subscription(status="canceled"),
                               event_id="evt_2", created=PERIOD_START + 120))

    assert plan_code(alice_tenant) == "free" and connection_limit(alice_tenant.id) == 100
    assert state_of(alice_tenant).status == "canceled"


def test_an_older_update_arriving_after_a_newer_one_is_ignored(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.updated", subscription(price="price_business"),
                               event_id="evt_new", created=PERIOD_START + 300))
    response = post_event(Client(), event("customer.subscription.updated", subscription(price="price_pro"),
                                          event_id="evt_old", created=PERIOD_START + 100))

    assert response.json()["applied"] is False
    assert plan_code(alice_tenant) == "business"


def test_an_update_delivered_after_the_deletion_does_not_revive_the_plan(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.created", subscription(), event_id="evt_1",
                               created=PERIOD_START + 10))
    post_event(Client(), event("customer.subscription.deleted", subscription(status="canceled"),
                               event_id="evt_3", created=PERIOD_START + 300))
    # Stripe sent this one before the deletion; it arrives late.
    post_event(Client(), event("customer.subscription.updated", subscription(price="price_business"),
                               event_id="evt_2", created=PERIOD_START + 200))

    assert plan_code(alice_tenant) == "free" and state_of(alice_tenant).status == "canceled"


def test_an_update_with_the_deletions_timestamp_does_not_revive_it_either(fake_stripe, alice_customer, alice_tenant):
    fake_stripe.reply("GET", "/v1/subscriptions/sub_1", (200, subscription(status="canceled")))
    post_event(Client(), event("customer.subscription.deleted", subscription(status="canceled"),
                               event_id="evt_2", created=PERIOD_START + 300))
    post_event(Client(), event("customer.subscription.updated", subscription(), event_id="evt_1",
                               created=PERIOD_START + 300))

    assert plan_code(alice_tenant) == "free" and state_of(alice_tenant).status == "canceled"


def test_a_new_subscription_after_a_cancellation_is_adopted(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.deleted", subscription(status="canceled"),
                               event_id="evt_1", created=PERIOD_START + 300))
    post_event(Client(), event("customer.subscription.created", subscription(sub_id="sub_2"),
                               event_id="evt_2", created=PERIOD_START + 100))

    row = Subscription.objects.get(tenant=alice_tenant)
    assert (row.stripe_subscription_id, row.plan.code) == ("sub_2", "pro")


def test_a_second_subscription_does_not_displace_an_active_one(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.created", subscription(price="price_business"),
                               event_id="evt_1"))
    post_event(Client(), event("customer.subscription.created", subscription(sub_id="sub_2"),
                               event_id="evt_2", created=PERIOD_START + 120))

    row = Subscription.objects.get(tenant=alice_tenant)
    assert (row.stripe_subscription_id, row.plan.code) == ("sub_1", "business")


def test_an_incomplete_subscription_does_not_grant_the_paid_plan(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.created", subscription(status="incomplete")))
    assert plan_code(alice_tenant) == "free"


def test_payment_failed_marks_past_due_and_keeps_the_plan_while_stripe_retries(
        fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.created", subscription(), event_id="evt_1"))
    post_event(Client(), event("invoice.payment_failed", invoice(), event_id="evt_2", created=PERIOD_START + 120))

    assert state_of(alice_tenant).status == "past_due" and plan_code(alice_tenant) == "pro"


def test_a_subscription_of_an_unknown_customer_is_acknowledged_and_ignored(fake_stripe, alice_customer):
    response = post_event(Client(), event("customer.subscription.updated", subscription(customer="cus_other")))
    assert response.status_code == 200 and response.json()["applied"] is False


def test_a_new_period_keeps_the_previous_one_for_late_usage(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.created", subscription(), event_id="evt_1"))
    post_event(Client(), event("customer.subscription.updated",
                               subscription(start=PERIOD_END, end=PERIOD_END + 30 * 86400),
                               event_id="evt_2", created=PERIOD_END + 5))

    state = state_of(alice_tenant)
    assert int(state.previous_period_start.timestamp()) == PERIOD_START
    assert int(state.previous_period_end.timestamp()) == PERIOD_END
    assert int(state.current_period_start.timestamp()) == PERIOD_END


def test_a_subscription_on_an_earlier_price_of_a_plan_keeps_that_plan(fake_stripe, alice_customer, alice_tenant):
    """After the catalog sync moved Business to a new price, old subscribers still map to Business."""
    post_event(Client(), event("customer.subscription.updated",
                               subscription(price="price_business_2025", metered="price_old_meter",
                                            product="tabcast_business")))
    assert plan_code(alice_tenant) == "business" and connection_limit(alice_tenant.id) == 50_000


def test_a_foreign_product_grants_no_plan(fake_stripe, alice_customer, alice_tenant):
    post_event(Client(), event("customer.subscription.updated",
                               subscription(price="price_other", metered="price_x", product="prod_other")))
    assert plan_code(alice_tenant) == "free"


def test_the_engine_sees_the_new_cap_without_waiting_for_its_cache(
        fake_stripe, alice_customer, alice_tenant, django_capture_on_commit_callbacks):
    from service.realtime.tenancy import get_app_sync
    from tenants import services

    app = services.create_app("web", tenant=alice_tenant)
    with django_capture_on_commit_callbacks(execute=True):
        post_event(Client(), event("customer.subscription.created", subscription(), event_id="evt_1"))
    assert get_app_sync(app_id=app.id).max_connections == 5_000

    with django_capture_on_commit_callbacks(execute=True):
        post_event(Client(), event("customer.subscription.deleted", subscription(status="canceled"),
                                   event_id="evt_2", created=PERIOD_START + 120))

    assert get_app_sync(app_id=app.id).max_connections == 100


@pytest.mark.parametrize("truth", ["past_due", "active"])
def test_two_events_of_the_same_second_are_settled_by_asking_stripe(fake_stripe, alice_customer, alice_tenant, truth):
    """``created`` cannot order them, so the subscription as Stripe has it now decides."""
    fake_stripe.reply("GET", "/v1/subscriptions/sub_1", (200, subscription(status=truth)))
    same_second = PERIOD_START + 60
    post_event(Client(), event("customer.subscription.updated", subscription(status="active"),
                               event_id="evt_a", created=same_second))
    assert not fake_stripe.requests  # an event from a later second needs no look-up

    post_event(Client(), event("customer.subscription.updated", subscription(status="past_due"),
                               event_id="evt_b", created=same_second))

    assert len(fake_stripe.calls("GET", "/v1/subscriptions/sub_1")) == 1
    assert state_of(alice_tenant).status == truth
