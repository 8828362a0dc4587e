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


def period_cents(plan: Plan, peak_connections: int) -> int:
    """What a plan charges for a period with this peak: flat price plus overage above the included."""
    pricing = getattr(plan, "pricing", None)
    if pricing is None:
        return plan.monthly_price_cents
    over = max(peak_connections - pricing.included_connections, 0)
    # Stripe rounds the line to whole cents.
    return plan.monthly_price_cents + round(over * pricing.overage_cents_per_connection)
