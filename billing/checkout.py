"""Starting a paid plan: the tenant's Stripe customer, then a Checkout Session for the plan."""

from django.db import transaction

from . import stripe_gateway
from .models import Plan, Subscription, SubscriptionState
from .plans import free_plan


def billing_row(tenant) -> Subscription | None:
    """The tenant's plan row, with its Stripe state when it has one."""
    return Subscription.objects.select_related("plan").filter(tenant=tenant).first()


def subscription_state(row: Subscription | None) -> SubscriptionState | None:
    return SubscriptionState.objects.filter(subscription=row).first() if row else None


def is_billed_by_stripe(tenant) -> bool:
    """Whether the tenant pays through a live Stripe subscription (plan changes go to the portal)."""
    return SubscriptionState.objects.filter(subscription__tenant=tenant,
                                            status__in=SubscriptionState.BILLABLE_STATUSES).exists()


class AlreadySubscribed(Exception):
    """Stripe already bills the tenant's customer, though its webhook has not reached us yet."""


def ensure_customer(tenant) -> str:
    """The tenant's Stripe customer id, created on first use."""
    # Stripe is called outside the row lock: its idempotency key gives concurrent first uses
    # the same customer, and only the first stored id is kept.
    row = billing_row(tenant)
    if row and row.stripe_customer_id:
        return row.stripe_customer_id
    customer_id = stripe_gateway.create_customer(tenant.id, tenant.name)
    with transaction.atomic():
        # A tenant with no row yet starts on Free until Stripe confirms the paid plan.
        row, _ = Subscription.objects.select_for_update().get_or_create(tenant=tenant,
                                                                        defaults={"plan": free_plan()})
        if not row.stripe_customer_id:
            row.stripe_customer_id = customer_id
            row.save(update_fields=["stripe_customer_id"])
    return row.stripe_customer_id


def start_checkout(tenant, plan: Plan, *, attempt: str, success_url: str, cancel_url: str) -> str:
    """A Checkout Session URL for the plan's flat price plus its metered connection price."""
    row = billing_row(tenant)
    # Asked of Stripe itself: a checkout completed a moment ago may not have been announced yet,
    # and a second one would bill the team twice.
    if row and row.stripe_customer_id and stripe_gateway.live_subscription_ids(
            row.stripe_customer_id, SubscriptionState.BILLABLE_STATUSES):
        raise AlreadySubscribed
    pricing = getattr(plan, "pricing", None)
    metered = [pricing.stripe_metered_price_id] if pricing and pricing.stripe_metered_price_id else []
    return stripe_gateway.create_checkout_session(
        customer_id=ensure_customer(tenant), tenant_id=tenant.id, plan_code=plan.code,
        price_ids=[plan.stripe_price_id], metered_price_ids=metered, success_url=success_url,
        cancel_url=cancel_url, attempt=attempt)


def portal_url(tenant, return_url: str) -> str | None:
    """A customer-portal session URL, or None for a tenant that never reached checkout."""
    row = billing_row(tenant)
    if not (row and row.stripe_customer_id):
        return None
    return stripe_gateway.create_portal_session(row.stripe_customer_id, return_url)
