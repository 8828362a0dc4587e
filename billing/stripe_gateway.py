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
    """A subscription Checkout Session for flat prices plus metered prices; returns its URL.

    ``attempt`` names one rendering of the upgrade form, so a double submit gets the same
    session while a later visit starts a fresh one.
    """
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
