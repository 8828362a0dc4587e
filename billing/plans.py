"""Which plan is which: the free fallback, and the plan a Stripe price stands for."""

from .models import Plan

FREE_PLAN_CODE = "free"


def free_plan() -> Plan:
    """The plan a tenant falls back to when its paid subscription ends."""
    return Plan.objects.get(code=FREE_PLAN_CODE)


def plan_for_prices(price_ids: list[str]) -> Plan | None:
    """The plan whose flat price is among these Stripe price ids, if any."""
    return Plan.objects.filter(stripe_price_id__in=[p for p in price_ids if p]).first()


def paid_plans():
    """Plans a tenant can buy: priced, with their Stripe prices configured."""
    return (Plan.objects.filter(monthly_price_cents__gt=0).exclude(stripe_price_id="")
            .select_related("pricing").order_by("monthly_price_cents"))
