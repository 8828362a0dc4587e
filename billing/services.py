"""Billing's public surface: plan limits for the realtime engine."""

from dataclasses import asdict, dataclass

from tenants.models import Tenant

from .models import Plan, Subscription
from .plans import FREE_PLAN_CODE


@dataclass(frozen=True)
class Limits:
    """What a tenant's plan allows; None everywhere means unlimited (the operator's tenant)."""

    max_connections: int | None = None  # concurrent physical connections, all apps of the tenant
    max_messages_per_day: int | None = None  # messages as Pusher counts them, per UTC day, all apps
    max_connects_per_second: int | None = None  # per app (and per server process)
    max_client_events_per_second: int | None = None  # per app (and per server process)
    max_deliveries_per_second: int | None = None  # per app, cluster-wide over the last second
    # Channel history (docs/recovery.md): bounds of each app's history_size / history_ttl settings.
    max_history_size: int | None = None  # messages kept per channel
    max_history_ttl: int | None = None  # seconds after the channel's last publish


UNLIMITED = Limits()


def plan_of(tenant_id: int) -> Plan | None:
    """The plan a tenant is held to: its subscription's, else Free; None for the operator's tenant.

    A team that signed up and never subscribed is on Free, and so is any tenant that is not the
    operator's, members or not (a team whose only user was deleted keeps the Free caps).
    """
    sub = Subscription.objects.select_related("plan").filter(tenant_id=tenant_id).first()
    if sub is not None:
        return sub.plan
    if Tenant.objects.filter(id=tenant_id, is_operator=True).exists():
        return None
    return Plan.objects.filter(code=FREE_PLAN_CODE).first()


def plan_limits(tenant_id: int | None) -> Limits:
    """Every limit of the tenant's plan (unlimited for the operator's own tenant)."""
    plan = plan_of(tenant_id) if tenant_id is not None else None
    if plan is None:
        return UNLIMITED
    return Limits(plan.max_connections, plan.max_messages_per_day, plan.max_connects_per_second,
                  plan.max_client_events_per_second, plan.max_deliveries_per_second, plan.max_history_size,
                  plan.max_history_ttl)


def engine_limits(tenant_id: int | None) -> dict:
    """``TABCAST["LIMITS_SOURCE"]``: the plan limits as the realtime engine reads them."""
    return asdict(plan_limits(tenant_id))


def connection_limit(tenant_id: int) -> int | None:
    """Max concurrent physical connections for a tenant's apps (None: unlimited, the operator's own)."""
    return plan_limits(tenant_id).max_connections


def message_quota(tenant_id: int) -> int | None:
    """Messages per UTC day for all of a tenant's apps (None: unlimited)."""
    return plan_limits(tenant_id).max_messages_per_day
