"""The one module that calls Stripe: a StripeClient built from settings, and billing's calls.

Every call uses stripe 16's ``StripeClient`` (``client.v1.<resource>.<method>(params, options)``):
idempotency keys go in ``options`` (in ``params`` they would be sent as a form field), and the
API host comes from ``base_addresses`` (``StripeClient`` ignores the global ``stripe.api_base``).
"""

from datetime import datetime
from functools import lru_cache

import stripe
from django.conf import settings

# Connection errors, 409s and 5xx are retried by the library with the same Idempotency-Key.
MAX_NETWORK_RETRIES = 2
TIMEOUT_SECONDS = 10


class BillingNotConfigured(Exception):
    """STRIPE_SECRET_KEY is not set: billing must not call Stripe."""


def is_configured() -> bool:
    """Whether a Stripe secret key is configured."""
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    """A StripeClient for the configured account and API host."""
    if not is_configured():
        raise BillingNotConfigured("STRIPE_SECRET_KEY is not set")
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, MAX_NETWORK_RETRIES)


@lru_cache(maxsize=4)
def _client(secret_key: str, api_base: str, retries: int) -> stripe.StripeClient:
    # One client per configuration, so its HTTP session keeps connections to Stripe open.
    base = {"api": api_base} if api_base else None
    return stripe.StripeClient(secret_key, base_addresses=base, max_network_retries=retries,
                               http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS))


def create_customer(tenant_id: int, name: str) -> str:
    """Create the tenant's Stripe customer; a repeated call within 24 h returns the same one."""
    customer = client().v1.customers.create(
        params={"name": name, "metadata": {"tenant_id": str(tenant_id)}},
        options={"idempotency_key": f"tabcast:customer:tenant:{tenant_id}"})
    return customer.id


def create_checkout_session(*, customer_id: str, tenant_id: int, plan_code: str, price_ids: list[str],
                            metered_price_ids: list[str], success_url: str, cancel_url: str,
                            attempt: str) -> str:
    """A subscription Checkout Session for flat prices plus metered prices; returns its URL."""
    # `attempt` names one rendering of the upgrade form: a double submit gets the same session
    # (same idempotency key), a later visit a fresh one.
    line_items = [{"price": price, "quantity": 1} for price in price_ids]
    # Metered prices take no quantity: usage comes from meter events.
    line_items += [{"price": price} for price in metered_price_ids]
    metadata = {"tenant_id": str(tenant_id), "plan_code": plan_code}
    session = client().v1.checkout.sessions.create(
        params={"mode": "subscription", "customer": customer_id, "client_reference_id": str(tenant_id),
                "line_items": line_items, "success_url": success_url, "cancel_url": cancel_url,
                "metadata": metadata, "subscription_data": {"metadata": metadata}},
        options={"idempotency_key": f"tabcast:checkout:tenant:{tenant_id}:{plan_code}:{attempt}"})
    return session.url


def create_portal_session(customer_id: str, return_url: str) -> str:
    """A customer-portal session URL (change plan, payment method, invoices, cancel)."""
    session = client().v1.billing_portal.sessions.create(
        params={"customer": customer_id, "return_url": return_url})
    return session.url


def live_subscription_ids(customer_id: str, statuses: tuple[str, ...]) -> list[str]:
    """Ids of the customer's subscriptions in one of ``statuses``, as Stripe has them now."""
    subscriptions = client().v1.subscriptions.list(params={"customer": customer_id, "status": "all", "limit": 100})
    return [sub.id for sub in subscriptions.data if sub.status in statuses]


def retrieve_subscription(subscription_id: str) -> stripe.Subscription:
    """The subscription as Stripe has it now."""
    return client().v1.subscriptions.retrieve(subscription_id)


def send_meter_event(*, event_name: str, identifier: str, timestamp: datetime, customer_id: str,
                     value: int) -> None:
    """Record one meter event; the identifier doubles as the idempotency key, so resends dedupe."""
    client().v1.billing.meter_events.create(
        params={"event_name": event_name, "identifier": identifier, "timestamp": int(timestamp.timestamp()),
                "payload": {"stripe_customer_id": customer_id, "value": str(value)}},
        options={"idempotency_key": identifier})


# --- Catalog (products, prices, the meter), used by the stripe_sync_catalog command ----------


def find_meter(event_name: str):
    """The meter that receives ``event_name`` (active or not), or None."""
    meters = client().v1.billing.meters.list(params={"limit": 100})
    return next((m for m in meters.auto_paging_iter() if m.event_name == event_name), None)


def create_last_value_meter(event_name: str, display_name: str):
    """A meter keeping the last value per period, mapped to customers by ``stripe_customer_id``."""
    return client().v1.billing.meters.create(
        params={"display_name": display_name, "event_name": event_name,
                "default_aggregation": {"formula": "last"},
                "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
                "value_settings": {"event_payload_key": "value"}},
        options={"idempotency_key": f"tabcast:meter:{event_name}"})


def reactivate_meter(meter_id: str):
    return client().v1.billing.meters.reactivate(meter_id)


def find_product(product_id: str):
    """The product with our chosen id, or None if Stripe has none."""
    try:
        return client().v1.products.retrieve(product_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise


def create_product(product_id: str, name: str, description: str):
    return client().v1.products.create(
        params={"id": product_id, "name": name, "description": description},
        options={"idempotency_key": f"tabcast:product:{product_id}"})


def find_price(lookup_key: str):
    """The active price holding ``lookup_key``, or None."""
    prices = client().v1.prices.list(params={"lookup_keys": [lookup_key], "active": True, "limit": 1})
    return prices.data[0] if prices.data else None


def create_price(params: dict, terms: str):
    """A price that takes over its lookup key; ``terms`` (stored in metadata) names what it charges."""
    params = {**params, "transfer_lookup_key": True, "metadata": {"tabcast_terms": terms}}
    return client().v1.prices.create(
        params=params, options={"idempotency_key": f"tabcast:price:{params['lookup_key']}:{terms}"})
