"""Channel history is bounded by the plan (docs/recovery.md): the seeded bounds, how they reach the
Settings form and load_app through LIMITS_SOURCE, a downgrade, and what the usage and billing pages show."""

import pytest
from django.urls import reverse

from billing.models import Plan, Subscription
from billing.services import engine_limits
from billing.views.subscription import history_terms
from tenants import services

pytestmark = pytest.mark.django_db

SEEDED = {"free": (100, 120), "pro": (1_000, 900), "business": (5_000, 3_600)}


def test_the_public_plans_are_seeded_with_history_bounds():
    for code, bounds in SEEDED.items():
        plan = Plan.objects.get(code=code)
        assert (plan.max_history_size, plan.max_history_ttl) == bounds


def test_the_bounds_reach_tenants_through_limits_source(alice_tenant):
    limits = engine_limits(alice_tenant.id)
    assert (limits["max_history_size"], limits["max_history_ttl"]) == SEEDED["free"]
    assert services.history_bounds(alice_tenant.id) == SEEDED["free"]
    Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="pro"))
    assert services.history_bounds(alice_tenant.id) == SEEDED["pro"]


def settings_form(**overrides):
    return {"name": "Shop", "max_message_bytes": 10240, "allowed_origins": "", **overrides}


def test_a_paid_plan_allows_more_history_and_a_downgrade_bounds_it_at_once(alice_client, alice_tenant, alice_app):
    url = reverse("tenants:app_settings", args=[alice_app.id])
    subscription = Subscription.objects.create(tenant=alice_tenant, plan=Plan.objects.get(code="pro"))
    assert "Your plan allows up to 1,000." in alice_client.get(url).content.decode()
    assert alice_client.post(url, settings_form(history_size=1_000, history_ttl=900)).status_code == 302
    response = alice_client.post(url, settings_form(history_size=1_001))
    assert response.context["form"].errors["history_size"] == ["Your plan allows at most 1000 here."]
    info = services.load_app(app_id=alice_app.id)
    assert (info.history_size, info.history_ttl) == (1_000, 900)

    subscription.plan = Plan.objects.get(code="free")  # the paid subscription ended
    subscription.save()
    info = services.load_app(app_id=alice_app.id)
    assert (info.history_size, info.history_ttl) == (100, 120)  # before anyone edits the settings
    detail = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    assert "100 messages per channel, kept 120 s after the last publish" in detail
    console = alice_client.get(reverse("live:console", args=[alice_app.id])).content.decode()
    assert "this app keeps 100 per channel for 120 s" in console
    response = alice_client.post(url, settings_form(history_size=1_000, history_ttl=900))
    assert response.status_code == 200
    assert response.context["form"].errors["history_size"] == ["Your plan allows at most 100 here."]
    assert response.context["form"].errors["history_ttl"] == ["Your plan allows at most 120 here."]


def test_usage_page_shows_recovery_counters_and_history_settings(alice_client, alice_app):
    page = alice_client.get(reverse("billing:usage", args=[alice_app.id])).content.decode()
    for kpi in ("kpi-resumes-recovered", "kpi-resumes-unrecovered", "kpi-stored-messages", "kpi-stored-bytes"):
        assert f'id="{kpi}"' in page
    assert "This app keeps 100 messages per channel for 120 s after the last publish; " \
           "its plan allows up to 100 messages and 120 s." in page
    alice_app.history_size = 0
    alice_app.save()
    page = alice_client.get(reverse("billing:usage", args=[alice_app.id])).content.decode()
    assert "Channel history is off for this app" in page


def test_plans_table_describes_the_history_bounds():
    assert history_terms(100, 120) == "100 messages for 2 min"
    assert history_terms(1_000, 900) == "1,000 messages for 15 min"
    assert history_terms(5_000, 3_600) == "5,000 messages for 1 h"
    assert history_terms(1, 90) == "1 message for 90 s"
    assert history_terms(None, None) == "Unlimited messages, no time limit"
