"""Which plan is which: the free fallback, and the plan a Stripe price stands for."""

from .models import Plan

FREE_PLAN_CODE = "free"


def free_plan() -> Plan:
    """The plan a tenant falls back to when its paid subscription ends."""
    return Plan.objects.get(code=FREE_PLAN_CODE)


PRODUCT_PREFIX = "tabcast_"


def product_id_for(plan_code: str) -> str:
    """The Stripe product id chosen for a plan, so the catalog sync can find it again."""
    return f"{PRODUCT_PREFIX}{plan_code}"


def plan_for_prices(prices: list) -> Plan | None:
    """The plan a subscription's prices stand for: by flat price id, else by product."""
    # The product covers subscriptions sold at an earlier price of the plan, which keep that
    # price after the catalog sync moved the plan to a new one.
    by_price = Plan.objects.filter(stripe_price_id__in=[price.id for price in prices]).first()
    if by_price is not None:
        return by_price
    codes = [price.product[len(PRODUCT_PREFIX):] for price in prices
             if isinstance(getattr(price, "product", None), str) and price.product.startswith(PRODUCT_PREFIX)]
    return Plan.objects.filter(code__in=codes, monthly_price_cents__gt=0).first()


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
