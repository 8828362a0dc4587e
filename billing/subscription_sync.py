"""Mirror a Stripe subscription onto the tenant's plan and state, ignoring stale news.

Stripe neither orders webhook deliveries nor delivers them once, so every change carries the
``created`` time of the event it came from and is applied only if nothing newer was applied.
A canceled subscription is final in Stripe, so nothing revives it.
"""

import logging
from datetime import UTC, datetime

from django.db import transaction

from service.realtime.tenancy import forget_apps

from .models import Subscription, SubscriptionState
from .plans import free_plan, plan_for_prices

log = logging.getLogger(__name__)

CANCELED = "canceled"


def at(unix: int | None) -> datetime | None:
    """A Stripe unix timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(unix, UTC) if unix is not None else None


def _items(stripe_subscription) -> list:
    # Index access: attribute access would be fine too, but "items" reads like the dict method.
    return list(stripe_subscription["items"]["data"])


def subscription_row_for_customer(customer_id: str) -> Subscription | None:
    """The tenant's billing row for a Stripe customer, locked for the change."""
    return Subscription.objects.select_for_update().filter(stripe_customer_id=customer_id).first()


def apply_subscription(stripe_subscription, event_at: datetime) -> bool:
    """Apply a subscription as of ``event_at``; False if it is stale, foreign or superseded."""
    row = subscription_row_for_customer(stripe_subscription.customer)
    if row is None:
        log.warning("Stripe subscription %s belongs to no tenant's customer", stripe_subscription.id)
        return False
    state, _ = SubscriptionState.objects.get_or_create(subscription=row)
    if not _should_apply(row, state, stripe_subscription, event_at):
        return False
    if row.stripe_subscription_id != stripe_subscription.id:
        state.last_event_at = None  # a new subscription: its own history starts now
    items = _items(stripe_subscription)
    paid_plan = plan_for_prices([item.price for item in items])
    entitled = stripe_subscription.status in SubscriptionState.BILLABLE_STATUSES and paid_plan is not None
    row.plan = paid_plan if entitled else free_plan()
    row.stripe_subscription_id = stripe_subscription.id
    row.save(update_fields=["plan", "stripe_subscription_id"])
    _set_period(state, _plan_item(items, paid_plan))
    state.status = stripe_subscription.status
    state.cancel_at_period_end = bool(getattr(stripe_subscription, "cancel_at_period_end", False))
    state.last_event_at = event_at
    state.save()
    # The engine caches app settings (and so the cap) per process: drop them once committed.
    transaction.on_commit(forget_apps)
    return True


def _should_apply(row: Subscription, state: SubscriptionState, stripe_subscription, event_at: datetime) -> bool:
    if row.stripe_subscription_id and row.stripe_subscription_id != stripe_subscription.id:
        # Another subscription of this customer: adopt it only if the current one is over.
        if state.is_billable:
            log.info("Ignoring subscription %s: tenant %s is billed on %s", stripe_subscription.id,
                     row.tenant_id, row.stripe_subscription_id)
            return False
        return stripe_subscription.status != CANCELED
    if state.status == CANCELED and stripe_subscription.status != CANCELED:
        return False
    return state.last_event_at is None or event_at >= state.last_event_at


def _plan_item(items: list, plan):
    """The flat-price item, whose period is the subscription's billing period."""
    if plan is not None:
        exact = [item for item in items if item.price.id == plan.stripe_price_id]
        same_plan = [item for item in items if plan_for_prices([item.price]) == plan]
        for item in exact + same_plan:
            return item
    return items[0] if items else None


def _set_period(state: SubscriptionState, item) -> None:
    # Since API 2025-03-31 the billing period lives on each item, not on the subscription.
    if item is None:
        return
    start, end = at(item.current_period_start), at(item.current_period_end)
    if state.current_period_start and start and start > state.current_period_start:
        state.previous_period_start, state.previous_period_end = state.current_period_start, state.current_period_end
    state.current_period_start, state.current_period_end = start, end


def mark_past_due(subscription_id: str, event_at: datetime) -> bool:
    """A failed invoice payment: past_due (the plan stays while Stripe retries the payment)."""
    row = Subscription.objects.select_for_update().filter(stripe_subscription_id=subscription_id).first()
    if row is None:
        return False
    state, _ = SubscriptionState.objects.get_or_create(subscription=row)
    if state.status == CANCELED or (state.last_event_at and event_at < state.last_event_at):
        return False
    state.status = "past_due"
    state.last_event_at = event_at
    state.save(update_fields=["status", "last_event_at", "updated_at"])
    return True
