"""Which connection cap the realtime engine enforces for a tenant."""

import pytest

from billing.models import Plan, Subscription
from billing.services import UNLIMITED, connection_limit, message_quota, plan_limits
from tenants import services


@pytest.mark.django_db
def test_a_team_that_signed_up_is_on_free_until_it_subscribes():
    user = services.sign_up("new@example.com", "a-long-password-1")
    tenant = services.tenant_of(user)
    assert connection_limit(tenant.id) == Plan.objects.get(code="free").max_connections
    pro = Plan.objects.get(code="pro")
    Subscription.objects.create(tenant=tenant, plan=pro)
    assert connection_limit(tenant.id) == pro.max_connections


@pytest.mark.django_db
def test_operator_apps_have_no_cap():
    app = services.create_app("made by manage.py create_app")
    assert connection_limit(app.tenant_id) is None


@pytest.mark.django_db
def test_a_team_whose_only_user_was_deleted_keeps_the_free_cap():
    # Finding 9: "no members" used to mean "operator" and so no cap at all.
    user = services.sign_up("leaver@example.com", "a-long-password-1")
    tenant = services.tenant_of(user)
    app = services.create_app("left behind", tenant=tenant)
    user.delete()
    assert not tenant.memberships.exists()
    free = Plan.objects.get(code="free")
    assert connection_limit(tenant.id) == free.max_connections is not None
    assert services.load_app(app_id=app.id).max_connections == free.max_connections
    assert message_quota(tenant.id) == free.max_messages_per_day is not None


@pytest.mark.django_db
def test_operator_tenant_has_no_quota_of_any_kind_even_with_members():
    app = services.create_app("operator's own")
    operator = app.tenant
    assert operator.is_operator
    user = services.sign_up("ops@example.com", "a-long-password-1")
    services.membership_of(user).__class__.objects.filter(user=user).update(tenant=operator)
    assert plan_limits(operator.id) == UNLIMITED


@pytest.mark.django_db
def test_seeded_plans_have_message_and_rate_quotas():
    for plan in Plan.objects.filter(code__in=["free", "pro", "business"]):
        assert plan.max_messages_per_day and plan.max_connects_per_second and plan.max_client_events_per_second
