"""Make Stripe's catalog match the plans: a product per paid plan, its prices, and the meter.

Everything is found by a name we choose (the product id, the price ``lookup_key``, the
meter's event name), so running the sync again changes nothing. A plan whose price changed
gets a new Stripe price that takes over the lookup key (Stripe prices are immutable);
existing subscriptions keep the price they were sold.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from . import stripe_gateway
from .models import Plan, PlanPricing, StripeMeter
from .plans import product_id_for

CURRENCY = "usd"
METER_DISPLAY_NAME = "Tabcast peak physical connections"


@dataclass
class SyncedPlan:
    code: str
    price_id: str
    metered_price_id: str


def sync_catalog() -> tuple[str, list[SyncedPlan]]:
    """Create or find the meter and every paid plan's product and prices; store their ids."""
    meter_id = ensure_meter(settings.STRIPE_METER_EVENT_NAME)
    synced = [sync_plan(plan, meter_id) for plan in
              Plan.objects.filter(monthly_price_cents__gt=0).select_related("pricing").order_by("id")]
    return meter_id, synced


def ensure_meter(event_name: str) -> str:
    meter = stripe_gateway.find_meter(event_name)
    if meter is None:
        meter = stripe_gateway.create_last_value_meter(event_name, METER_DISPLAY_NAME)
    elif meter.status != "active":
        meter = stripe_gateway.reactivate_meter(meter.id)
    StripeMeter.objects.update_or_create(event_name=event_name, defaults={"stripe_meter_id": meter.id})
    return meter.id


def ensure_product(plan: Plan) -> str:
    chosen_id = product_id_for(plan.code)
    product = stripe_gateway.find_product(chosen_id) or stripe_gateway.create_product(
        chosen_id, f"Tabcast {plan.name}", "Realtime channels, billed on physical connections "
                                            "(all tabs of a browser share one).")
    return product.id


def ensure_price(lookup_key: str, terms: str, params: dict) -> str:
    """The active price with this lookup key if it charges ``terms``, else a new one."""
    price = stripe_gateway.find_price(lookup_key)
    if price is not None and price.metadata and "tabcast_terms" in price.metadata \
            and price.metadata["tabcast_terms"] == terms:
        return price.id
    return stripe_gateway.create_price({**params, "lookup_key": lookup_key}, terms).id


def flat_price_params(plan: Plan, product_id: str) -> tuple[str, dict]:
    terms = f"{plan.monthly_price_cents}-{CURRENCY}-month"
    return terms, {"product": product_id, "currency": CURRENCY, "unit_amount": plan.monthly_price_cents,
                   "nickname": f"{plan.name} monthly", "recurring": {"interval": "month", "usage_type": "licensed"}}


def metered_price_params(pricing: PlanPricing, product_id: str, meter_id: str) -> tuple[str, dict]:
    """Graduated tiers: the included connections free, each one above at the overage price."""
    overage = f"{pricing.overage_cents_per_connection.normalize():f}"
    terms = f"{pricing.included_connections}-free-then-{overage}-{CURRENCY}-{meter_id}"
    return terms, {
        "product": product_id, "currency": CURRENCY, "nickname": f"{pricing.plan.name} peak connections",
        "billing_scheme": "tiered", "tiers_mode": "graduated",
        "tiers": [{"up_to": pricing.included_connections, "unit_amount": 0},
                  {"up_to": "inf", "unit_amount_decimal": overage}],
        "recurring": {"interval": "month", "usage_type": "metered", "meter": meter_id},
    }


def sync_plan(plan: Plan, meter_id: str) -> SyncedPlan:
    product_id = ensure_product(plan)
    terms, params = flat_price_params(plan, product_id)
    price_id = ensure_price(f"tabcast_{plan.code}_monthly", terms, params)
    pricing = getattr(plan, "pricing", None)
    metered_id = ""
    if pricing is not None:
        terms, params = metered_price_params(pricing, product_id, meter_id)
        metered_id = ensure_price(f"tabcast_{plan.code}_peak_connections", terms, params)
    with transaction.atomic():
        Plan.objects.filter(pk=plan.pk).update(stripe_price_id=price_id)
        if pricing is not None:
            PlanPricing.objects.filter(pk=pricing.pk).update(stripe_product_id=product_id,
                                                             stripe_metered_price_id=metered_id)
    return SyncedPlan(plan.code, price_id, metered_id)
