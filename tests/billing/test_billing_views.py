"""The billing page, checkout and portal: login, owner-only changes, tenant isolation, Stripe redirects."""

import re
from urllib.parse import parse_qs
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import HourlyUsage, Plan, PlanPricing, Subscription, SubscriptionState
from tenants import services
from tenants.models import Membership

from .fake_stripe import error

pytestmark = pytest.mark.django_db

PAGE, CHECKOUT, PORTAL = "/dashboard/billing/", "/dashboard/billing/checkout/", "/dashboard/billing/portal/"
SESSION_URL = "https://checkout.stripe.test/c/pay/cs_test_1"


@pytest.fixture
def catalog(db):
    """Pro and Business with their Stripe prices, as stripe_sync_catalog leaves them."""
    for code in ("pro", "business"):
        Plan.objects.filter(code=code).update(stripe_price_id=f"price_{code}")
        PlanPricing.objects.filter(plan__code=code).update(stripe_metered_price_id=f"price_{code}_meter")


def stripe_list(data: list) -> dict:
    return {"object": "list", "url": "/v1/subscriptions", "has_more": False, "data": data}


def attempt_of(page: str) -> str:
    return re.search(r'name="attempt" value="([0-9a-f]{32})"', page).group(1)


def test_the_page_needs_a_login():
    response = Client().get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('tenants:login')}?next={PAGE}"


def test_without_a_key_the_page_says_billing_is_not_configured_and_nothing_calls_stripe(
        unconfigured, alice_client, alice_tenant, catalog):
    page = alice_client.get(PAGE).content.decode()
    assert "Billing is not configured" in page
    assert "Upgrade to" not in page
    response = alice_client.post(CHECKOUT, {"plan": "pro", "attempt": "a" * 32})
    assert response.status_code == 302 and not Subscription.objects.filter(tenant=alice_tenant).exists()


def test_the_page_shows_plan_cap_and_the_periods_physical_and_logical_peaks(fake_stripe, alice_client,
                                                                           alice_tenant, catalog):
    Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="pro"))
    app = services.create_app("web", tenant=alice_tenant)
    this_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    HourlyUsage.objects.create(app=app, hour=this_hour, source="s", peak_sockets=2400, peak_tabs=6100)

    page = alice_client.get(PAGE).content.decode()

    assert re.search(r'id="plan-name">Pro<', page) and re.search(r'id="plan-cap">5,000<', page)
    assert 'id="peak-sockets">2,400<' in page and 'id="peak-tabs">6,100<' in page
    # 6,100 tabs on Pro: 4,100 over the 2,000 included at 1¢, against 400 over: $37.00 more.
    assert ("At this period&#x27;s peak, 6,100 tabs shared 2,400 physical connections: your plan counts "
            "2,400, where one socket per tab would have counted 6,100 ($37.00 more on Pro).") in page


def test_the_page_counts_only_the_tenants_own_apps(fake_stripe, alice_client, alice_tenant, bob_tenant):
    bob_app = services.create_app("bob", tenant=bob_tenant)
    HourlyUsage.objects.create(app=bob_app, hour=timezone.now().replace(minute=0, second=0, microsecond=0),
                               source="s", peak_sockets=777, peak_tabs=999)
    page = alice_client.get(PAGE).content.decode()
    assert 'id="peak-sockets">0<' in page and "777" not in page and "999" not in page


def test_upgrade_creates_the_customer_and_a_checkout_session_and_redirects_303(
        fake_stripe, alice_client, alice_tenant, catalog):
    fake_stripe.reply("POST", "/v1/customers", (200, {"id": "cus_A", "object": "customer"}))
    fake_stripe.reply("POST", "/v1/checkout/sessions", (200, {"id": "cs_1", "object": "checkout.session",
                                                              "url": SESSION_URL}))
    attempt = attempt_of(alice_client.get(PAGE).content.decode())

    response = alice_client.post(CHECKOUT, {"plan": "business", "attempt": attempt})

    assert response.status_code == 303 and response["Location"] == SESSION_URL
    assert Subscription.objects.get(tenant=alice_tenant).stripe_customer_id == "cus_A"
    [session] = fake_stripe.calls("POST", "/v1/checkout/sessions")
    form = session.form
    assert (form["mode"], form["customer"], form["client_reference_id"]) == ("subscription", "cus_A",
                                                                             str(alice_tenant.id))
    assert (form["line_items[0][price]"], form["line_items[1][price]"]) == ("price_business",
                                                                            "price_business_meter")
    assert form["success_url"] == "http://testserver/dashboard/billing/?checkout=success"
    assert session.idempotency_key == f"tabcast:checkout:tenant:{alice_tenant.id}:business:{attempt}"


def test_a_double_submit_reuses_the_customer_and_the_idempotency_key(fake_stripe, alice_client, catalog):
    fake_stripe.reply("POST", "/v1/customers", (200, {"id": "cus_A", "object": "customer"}))
    fake_stripe.reply("POST", "/v1/checkout/sessions", (200, {"id": "cs_1", "object": "checkout.session",
                                                              "url": SESSION_URL}))
    fake_stripe.reply("GET", "/v1/subscriptions", (200, stripe_list([])))
    data = {"plan": "pro", "attempt": attempt_of(alice_client.get(PAGE).content.decode())}

    alice_client.post(CHECKOUT, data)
    alice_client.post(CHECKOUT, data)

    assert len(fake_stripe.calls("POST", "/v1/customers")) == 1
    # The second time the team has a customer, so Stripe is asked whether it already pays.
    [asked] = fake_stripe.calls("GET", "/v1/subscriptions")
    assert parse_qs(asked.query) == {"customer": ["cus_A"], "status": ["all"], "limit": ["100"]}
    keys = {c.idempotency_key for c in fake_stripe.calls("POST", "/v1/checkout/sessions")}
    assert len(keys) == 1


def test_no_second_checkout_while_stripe_already_bills_the_customer(fake_stripe, alice_client, alice_tenant,
                                                                   catalog):
    """The first checkout completed, but its webhook has not arrived yet."""
    Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="free"), stripe_customer_id="cus_A")
    fake_stripe.reply("GET", "/v1/subscriptions", (200, stripe_list([
        {"id": "sub_old", "object": "subscription", "status": "canceled"},
        {"id": "sub_1", "object": "subscription", "status": "active"}])))

    response = alice_client.post(CHECKOUT, {"plan": "business", "attempt": "9" * 32}, follow=True)

    assert "Stripe already has a subscription for your team" in response.content.decode()
    assert not fake_stripe.calls("POST", "/v1/checkout/sessions")


def test_a_customer_whose_subscriptions_all_ended_can_check_out_again(fake_stripe, alice_client, alice_tenant,
                                                                     catalog):
    Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="free"), stripe_customer_id="cus_A")
    fake_stripe.reply("GET", "/v1/subscriptions", (200, stripe_list([
        {"id": "sub_old", "object": "subscription", "status": "canceled"}])))
    fake_stripe.reply("POST", "/v1/checkout/sessions", (200, {"id": "cs_2", "object": "checkout.session",
                                                              "url": SESSION_URL}))

    response = alice_client.post(CHECKOUT, {"plan": "pro", "attempt": "8" * 32})

    assert response.status_code == 303 and not fake_stripe.calls("POST", "/v1/customers")


def test_stripe_failing_shows_a_message_and_charges_nothing(fake_stripe, alice_client, catalog):
    fake_stripe.reply("POST", "/v1/customers", (400, error("Invalid API key")))
    response = alice_client.post(CHECKOUT, {"plan": "pro", "attempt": "b" * 32}, follow=True)
    assert response.redirect_chain[-1][0] == PAGE
    assert "Stripe could not start the checkout" in response.content.decode()


def test_a_forged_or_missing_attempt_is_refused(fake_stripe, alice_client, catalog):
    assert alice_client.post(CHECKOUT, {"plan": "pro", "attempt": "x"}).status_code == 400
    assert not fake_stripe.requests


def test_an_unknown_or_unpriced_plan_is_a_404(fake_stripe, alice_client, catalog):
    Plan.objects.filter(code="business").update(stripe_price_id="")
    for code in ("free", "business", "nope"):
        assert alice_client.post(CHECKOUT, {"plan": code, "attempt": "c" * 32}).status_code == 404
    assert not fake_stripe.requests


def test_members_who_are_not_owners_cannot_start_checkout(fake_stripe, alice, alice_tenant, catalog):
    carol = services.sign_up("carol@example.com", "correct horse battery")
    Membership.objects.filter(user=carol).update(tenant=alice_tenant, role="member")
    client = Client()
    client.force_login(carol)
    assert "Only the team's owner" in client.get(PAGE).content.decode()
    assert client.post(CHECKOUT, {"plan": "pro", "attempt": "d" * 32}).status_code == 403
    assert not fake_stripe.requests


def test_checkout_uses_the_users_own_tenant_only(fake_stripe, alice_client, alice_tenant, bob_tenant, catalog):
    Subscription.objects.create(tenant=bob_tenant, plan=Plan.objects.get(code="free"), stripe_customer_id="cus_B")
    fake_stripe.reply("POST", "/v1/customers", (200, {"id": "cus_A", "object": "customer"}))
    fake_stripe.reply("POST", "/v1/checkout/sessions", (200, {"id": "cs_1", "object": "checkout.session",
                                                              "url": SESSION_URL}))

    alice_client.post(CHECKOUT, {"plan": "pro", "attempt": "e" * 32, "tenant": bob_tenant.id,
                                 "customer": "cus_B"})

    form = fake_stripe.calls("POST", "/v1/checkout/sessions")[0].form
    assert (form["customer"], form["client_reference_id"]) == ("cus_A", str(alice_tenant.id))
    assert Subscription.objects.get(tenant=bob_tenant).stripe_customer_id == "cus_B"


def test_a_subscribed_tenant_is_sent_to_the_portal_instead_of_a_second_checkout(
        fake_stripe, alice_client, alice_tenant, catalog):
    row = Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="pro"),
                                      stripe_customer_id="cus_A", stripe_subscription_id="sub_1")
    SubscriptionState.objects.create(subscription=row, status="active", current_period_start=timezone.now(),
                                     current_period_end=timezone.now() + timedelta(days=30))
    page = alice_client.get(PAGE).content.decode()
    assert "Upgrade to" not in page and "Manage billing in the Stripe portal" in page
    assert 'id="subscription-status">Active<' in page

    response = alice_client.post(CHECKOUT, {"plan": "business", "attempt": "f" * 32})
    assert response.status_code == 302 and not fake_stripe.requests


def test_the_portal_button_opens_a_portal_session_for_the_tenants_customer(
        fake_stripe, alice_client, alice_tenant):
    Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="free"), stripe_customer_id="cus_A")
    fake_stripe.reply("POST", "/v1/billing_portal/sessions",
                      (200, {"id": "bps_1", "object": "billing_portal.session", "url": "https://portal.test/s"}))

    response = alice_client.post(PORTAL)

    assert response.status_code == 303 and response["Location"] == "https://portal.test/s"
    assert fake_stripe.calls("POST", "/v1/billing_portal/sessions")[0].form == {
        "customer": "cus_A", "return_url": "http://testserver/dashboard/billing/"}


def test_the_portal_without_a_customer_explains_and_calls_nothing(fake_stripe, alice_client):
    response = alice_client.post(PORTAL, follow=True)
    assert "Choose a plan first" in response.content.decode() and not fake_stripe.requests


@pytest.mark.parametrize("url", [CHECKOUT, PORTAL])
def test_billing_forms_need_a_csrf_token(fake_stripe, alice, url, catalog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(url, {"plan": "pro", "attempt": "a" * 32}).status_code == 403
    assert not fake_stripe.requests


def test_coming_back_from_checkout_says_what_happens_next(fake_stripe, alice_client):
    page = alice_client.get(PAGE + "?checkout=success").content.decode()
    assert "applies as soon as Stripe confirms the payment" in page


def test_a_subscribed_tenants_peaks_cover_its_stripe_period_from_the_hour_it_began(
        fake_stripe, alice_client, alice_tenant, catalog):
    now = timezone.now()
    start = now - timedelta(hours=2)
    row = Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="pro"),
                                      stripe_customer_id="cus_A", stripe_subscription_id="sub_1")
    SubscriptionState.objects.create(subscription=row, status="active", current_period_start=start,
                                     current_period_end=start + timedelta(days=30))
    app = services.create_app("web", tenant=alice_tenant)
    start_hour = start.replace(minute=0, second=0, microsecond=0)
    HourlyUsage.objects.create(app=app, hour=start_hour, source="s", peak_sockets=321, peak_tabs=654)
    HourlyUsage.objects.create(app=app, hour=start_hour - timedelta(hours=1), source="s", peak_sockets=999,
                               peak_tabs=999)  # the previous period

    page = alice_client.get(PAGE).content.decode()

    assert 'id="peak-sockets">321<' in page and 'id="peak-tabs">654<' in page
    assert f"Billing period {start:%b} {start.day}" in page
