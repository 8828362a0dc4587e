"""Which connection cap the realtime engine enforces for a tenant."""

import pytest

from billing.models import Plan, Subscription
from billing.services import connection_limit
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
