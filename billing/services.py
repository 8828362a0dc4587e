"""Billing's public surface: plan limits for the realtime engine."""

from tenants.models import Membership

from .models import Plan, Subscription
from .plans import FREE_PLAN_CODE


def connection_limit(tenant_id: int) -> int | None:
    """Max concurrent physical connections for a tenant's apps (None: unlimited).

    A team that signed up and never subscribed is on Free. Tenants without members are the
    operator's own (apps made with ``manage.py create_app``) and have no cap.
    """
    sub = Subscription.objects.select_related("plan").filter(tenant_id=tenant_id).first()
    if sub is not None:
        return sub.plan.max_connections
    if Membership.objects.filter(tenant_id=tenant_id).exists():
        free = Plan.objects.filter(code=FREE_PLAN_CODE).first()
        return free.max_connections if free else None
    return None

