"""Stripe objects and events in the current API shape (item-level periods, prices, invoice parent)."""

import json
import time

import stripe

from .conftest import WEBHOOK_SECRET

PERIOD_START = 1_764_000_000  # 2025-11-24T16:00:00Z
PERIOD_END = PERIOD_START + 30 * 86400


def subscription(sub_id="sub_1", customer="cus_A", status="active", price="price_pro", metered="price_pro_meter",
                 start=PERIOD_START, end=PERIOD_END, cancel_at_period_end=False, product=None) -> dict:
    item = {"object": "subscription_item", "current_period_start": start, "current_period_end": end}
    return {
        "id": sub_id, "object": "subscription", "customer": customer, "status": status,
        "cancel_at_period_end": cancel_at_period_end, "metadata": {},
        "items": {"object": "list", "data": [
            {**item, "id": f"si_{price}", "price": {"id": price, "object": "price", "product": product}},
            {**item, "id": f"si_{metered}", "price": {"id": metered, "object": "price", "product": product}},
        ]},
    }


def checkout_session(tenant_id, customer="cus_A", sub_id="sub_1") -> dict:
    return {"id": "cs_1", "object": "checkout.session", "mode": "subscription", "customer": customer,
            "subscription": sub_id, "client_reference_id": str(tenant_id), "url": None}


def invoice(sub_id="sub_1") -> dict:
    return {"id": "in_1", "object": "invoice", "status": "open",
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub_id}}}


def event(type_: str, obj: dict, event_id="evt_1", created=PERIOD_START + 60) -> dict:
    return {"id": event_id, "object": "event", "type": type_, "created": created, "livemode": False,
            "api_version": stripe.api_version, "data": {"object": obj}}


def post_event(client, payload: dict, *, timestamp=None, secret=WEBHOOK_SECRET):
    """POST an event the way Stripe does: raw JSON body and a Stripe-Signature header."""
    body = json.dumps(payload)
    signature = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=int(timestamp if timestamp is not None else time.time()))
    return client.post("/dashboard/billing/stripe/webhook", body, content_type="application/json",
                       headers={"Stripe-Signature": signature})
