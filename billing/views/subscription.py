"""The team's billing page: plan, cap and this period's peaks; upgrade via Checkout, manage in the portal."""

import logging
import re
import uuid
from datetime import UTC, datetime
from functools import wraps

import stripe
from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from tenants.access import owner_required, tenant_required

from .. import quotas, stripe_gateway
from ..checkout import (AlreadySubscribed, billing_row, is_billed_by_stripe, portal_url, start_checkout,
                       subscription_state)
from ..plans import paid_plans, period_cents
from ..services import connection_limit
from ..tenant_peaks import period_peak

log = logging.getLogger(__name__)

# One rendering of the upgrade form: a double submit reuses its Checkout Session.
ATTEMPT = re.compile(r"[0-9a-f]{32}")
RETURN_MESSAGES = {
    "success": (messages.SUCCESS, "Thanks! Your new plan applies as soon as Stripe confirms the payment, "
                                  "usually within seconds."),
    "canceled": (messages.INFO, "Checkout canceled: nothing was charged and your plan is unchanged."),
}


@tenant_required
def billing_page(request):
    tenant = request.tenant
    level_message = RETURN_MESSAGES.get(request.GET.get("checkout", ""))
    if level_message:
        messages.add_message(request, *level_message)
    row = billing_row(tenant)
    state = subscription_state(row)
    period_start, period_end = _display_period(state)
    sockets, tabs = period_peak(tenant.id, period_start, period_end)
    plan = row.plan if row else None
    return render(request, "billing/billing_page.html", {
        "configured": stripe_gateway.is_configured(), "plan": plan, "state": state,
        "status_label": state.status.replace("_", " ").capitalize() if state else "",
        "cap": _cap(connection_limit(tenant.id)), "period_start": period_start, "period_end": period_end,
        "peak_sockets": f"{sockets:,}", "peak_tabs": f"{tabs:,}",
        "saving_sentence": saving_sentence(plan, sockets, tabs),
        "price": dollars(plan.monthly_price_cents) if plan else "", "plans": [offer(p) for p in paid_plans()],
        "subscribed": bool(state and state.is_billable),
        "has_customer": bool(row and row.stripe_customer_id), "attempt": uuid.uuid4().hex,
        "is_owner": request.membership.is_owner, "message_quota": quotas.messages_today(tenant.id),
    })


def _display_period(state) -> tuple[datetime, datetime]:
    """The Stripe billing period, or the current calendar month for a tenant not billed by Stripe."""
    if state and state.is_billable and state.current_period_start and state.current_period_end:
        return state.current_period_start, state.current_period_end
    now = timezone.now()
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    return month, now


def _cap(cap: int | None) -> str:
    return "No cap" if cap is None else f"{cap:,}"


def dollars(cents: int) -> str:
    """$49.00"""
    return f"${cents / 100:,.2f}"


def offer(plan) -> dict:
    """A plan as the plans table shows it."""
    pricing = getattr(plan, "pricing", None)
    return {"plan": plan, "price": f"{dollars(plan.monthly_price_cents)} / month",
            "included": f"{pricing.included_connections:,}" if pricing else "–",
            "overage": f"{pricing.overage_cents_per_connection.normalize():f}¢ each" if pricing else "–",
            "cap": f"{plan.max_connections:,}" if plan.max_connections else "Unlimited",
            "messages": f"{plan.max_messages_per_day:,}" if plan.max_messages_per_day else "Unlimited",
            "history": history_terms(plan.max_history_size, plan.max_history_ttl)}


def history_terms(size: int | None, ttl: int | None) -> str:
    """The channel history a plan allows: "1,000 messages for 15 min"."""
    messages = "Unlimited messages" if size is None else _plural(size, "message")
    if ttl is None:
        return f"{messages}, no time limit"
    duration = f"{ttl // 3600} h" if ttl >= 3600 and ttl % 3600 == 0 else \
        f"{ttl // 60} min" if ttl >= 60 and ttl % 60 == 0 else f"{ttl} s"
    return f"{messages} for {duration}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def saving_sentence(plan, sockets: int, tabs: int) -> str:
    """The one sentence on what sharing a socket between tabs saved this period."""
    if tabs <= sockets:
        return "No tab has shared a connection yet this period: each counted once, as it would anyway."
    sentence = (f"At this period's peak, {_plural(tabs, 'tab')} shared {_plural(sockets, 'physical connection')}: "
                f"your plan counts {sockets:,}, where one socket per tab would have counted {tabs:,}")
    extra = (period_cents(plan, tabs) - period_cents(plan, sockets)) if plan else 0
    return f"{sentence} (${extra / 100:,.2f} more on {plan.name})." if extra > 0 else f"{sentence}."


def stripe_required(view):
    """Back to the billing page with an error when this server has no Stripe keys."""
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not stripe_gateway.is_configured():
            messages.error(request, "Billing is not configured on this server.")
            return redirect("billing:billing")
        return view(request, *args, **kwargs)
    return wrapper


@require_POST
@owner_required
@stripe_required
def checkout(request):
    """Create (idempotently) the customer and a Checkout Session, then send the owner to Stripe."""
    page = reverse("billing:billing")
    attempt = request.POST.get("attempt", "")
    if not ATTEMPT.fullmatch(attempt):
        return HttpResponseBadRequest("Reload the billing page and try again.", content_type="text/plain")
    plan = get_object_or_404(paid_plans(), code=request.POST.get("plan", ""))
    if is_billed_by_stripe(request.tenant):
        messages.info(request, "You already have a paid plan: change it in the billing portal.")
        return redirect(page)
    back = request.build_absolute_uri(page)
    try:
        url = start_checkout(request.tenant, plan, attempt=attempt, success_url=f"{back}?checkout=success",
                             cancel_url=f"{back}?checkout=canceled")
    except AlreadySubscribed:
        messages.info(request, "Stripe already has a subscription for your team; your plan updates here "
                               "within moments. Use the billing portal to change it.")
        return redirect(page)
    except stripe.StripeError as exc:
        log.error("Checkout for tenant %s failed: %s", request.tenant.id, exc.user_message or type(exc).__name__)
        messages.error(request, "Stripe could not start the checkout. Nothing was charged; please try again.")
        return redirect(page)
    return _see_other(url)


@require_POST
@owner_required
@stripe_required
def portal(request):
    """Send the owner to Stripe's customer portal (plan, payment method, invoices, cancel)."""
    page = reverse("billing:billing")
    try:
        url = portal_url(request.tenant, request.build_absolute_uri(page))
    except stripe.StripeError as exc:
        log.error("Portal for tenant %s failed: %s", request.tenant.id, exc.user_message or type(exc).__name__)
        messages.error(request, "Stripe could not open the billing portal; please try again.")
        return redirect(page)
    if url is None:
        messages.info(request, "Choose a plan first: the portal manages an existing subscription.")
        return redirect(page)
    return _see_other(url)


def _see_other(url: str):
    """303: the browser follows with a GET, so the POST is never repeated at Stripe."""
    response = redirect(url)
    response.status_code = 303
    return response
