"""Billing's public surface: plan limits for the realtime engine."""

from .models import Subscription


def connection_limit(tenant_id: int) -> int | None:
    """Max concurrent physical connections for a tenant's apps (None: unlimited)."""
    sub = Subscription.objects.select_related("plan").filter(tenant_id=tenant_id).first()
    return sub.plan.max_connections if sub else None
