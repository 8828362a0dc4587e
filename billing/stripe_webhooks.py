"""Stripe's webhook endpoint: verify the signature on the raw body, apply each event once."""

import logging

import stripe
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import stripe_gateway
from .models import ProcessedStripeEvent, Subscription, SubscriptionState
from .subscription_sync import apply_subscription, at, mark_past_due

log = logging.getLogger(__name__)

CHECKOUT_COMPLETED = "checkout.session.completed"
SUBSCRIPTION_EVENTS = ("customer.subscription.created", "customer.subscription.updated",
                       "customer.subscription.deleted")
PAYMENT_FAILED = "invoice.payment_failed"
HANDLED = (CHECKOUT_COMPLETED, *SUBSCRIPTION_EVENTS, PAYMENT_FAILED)


@csrf_exempt  # authenticated by the Stripe-Signature HMAC instead of a CSRF token
@require_POST
def stripe_webhook(request):
    """Verify and apply one Stripe event; 400 for a bad or too old signature."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        return HttpResponse("Stripe webhooks are not configured", status=503, content_type="text/plain")
    try:
        # The raw bytes: the signature covers the body exactly as Stripe sent it.
        event = stripe.Webhook.construct_event(request.body, request.headers.get("Stripe-Signature"),
                                               settings.STRIPE_WEBHOOK_SECRET)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        log.warning("Rejected a Stripe webhook: %s", exc)
        return HttpResponseBadRequest("Invalid Stripe signature or payload", content_type="text/plain")
    applied = handle_event(event)
    return JsonResponse({"received": True, "applied": applied})


def handle_event(event) -> bool:
    """Apply a verified event unless it was applied before; True if it changed anything now."""
    if event.type not in HANDLED or ProcessedStripeEvent.objects.filter(event_id=event.id).exists():
        return False
    # Fetched before the transaction, so no database lock is held across a Stripe call.
    fetched = _fetch_subscription_if_needed(event)
    with transaction.atomic():
        # Recorded with the side effects: a redelivery (even a concurrent one) finds it and stops.
        _, first = ProcessedStripeEvent.objects.get_or_create(event_id=event.id, defaults={"type": event.type})
        if not first:
            return False
        return _apply(event, fetched)


def _apply(event, fetched) -> bool:
    obj, event_at = event.data.object, at(event.created)
    if event.type == CHECKOUT_COMPLETED:
        return fetched is not None and _link_checkout(obj) and apply_subscription(fetched, event_at)
    if event.type in SUBSCRIPTION_EVENTS:
        return apply_subscription(fetched or obj, event_at)
    subscription_id = _invoice_subscription_id(obj)
    return bool(subscription_id) and mark_past_due(subscription_id, event_at)


def _fetch_subscription_if_needed(event):
    """The subscription as Stripe has it now, when the event alone cannot tell us."""
    # A completed checkout names its subscription without including it. And `created` has
    # one-second resolution: of two events of the same second, neither payload can say which
    # is newer, so the current state is asked for instead.
    obj = event.data.object
    if event.type == CHECKOUT_COMPLETED:
        if getattr(obj, "mode", None) != "subscription" or not getattr(obj, "subscription", None):
            return None
        return stripe_gateway.retrieve_subscription(obj.subscription)
    if event.type in SUBSCRIPTION_EVENTS and SubscriptionState.objects.filter(
            subscription__stripe_subscription_id=obj.id, last_event_at=at(event.created)).exists():
        return stripe_gateway.retrieve_subscription(obj.id)
    return None


def _link_checkout(session) -> bool:
    """Check the session's tenant (client_reference_id) owns the session's customer."""
    tenant_id = str(getattr(session, "client_reference_id", None) or "")
    row = (Subscription.objects.select_for_update().filter(tenant_id=int(tenant_id)).first()
           if tenant_id.isdigit() else None)
    if row is None or row.stripe_customer_id != session.customer:
        log.warning("Checkout session %s does not match tenant %s's customer", session.id, tenant_id)
        return False
    return True


def _invoice_subscription_id(invoice) -> str | None:
    # Since API 2025-03-31 an invoice names its subscription under parent.subscription_details.
    parent = getattr(invoice, "parent", None)
    details = getattr(parent, "subscription_details", None) if parent else None
    return getattr(details, "subscription", None) if details else None
