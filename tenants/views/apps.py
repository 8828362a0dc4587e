"""The app pages: list, create, detail with getting started, settings, credentials, delete."""

import logging
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from service.realtime import webhooks

from .. import services, snippets, webhook_log
from ..access import tenant_app, tenant_required
from ..forms import AppCreateForm, AppDeleteForm, AppSettingsForm
from ..models import WebhookAttempt

# Who did what to credentials, for the operator's audit trail; never the secrets themselves.
audit = logging.getLogger("tenants.audit")


@tenant_required
def app_list(request):
    """The team's apps."""
    apps = services.apps_of(request.tenant)
    return render(request, "tenants/app_list.html", {"apps": apps})


@tenant_required
def app_new(request):
    """Create an app, then show its getting-started page."""
    form = AppCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        app = services.create_app(form.cleaned_data["name"], tenant=request.tenant)
        messages.success(request, f"{app.name} is ready. Follow the steps below to send your first event.")
        return redirect("tenants:app_detail", app.id)
    return render(request, "tenants/app_new.html", {"form": form})


@tenant_app
def app_detail(request, app):
    """Credentials (secret hidden), settings summary and getting-started snippets."""
    return _render_detail(request, app)


@require_POST
@never_cache
@tenant_app
def app_reveal(request, app):
    """The secret is only ever sent in answer to this explicit POST, never cached."""
    audit.info("secret of app %s revealed to user %s", app.id, request.user.pk)
    return _render_detail(request, app, secret=app.secret)


def _render_detail(request, app, secret: str | None = None):
    endpoint = snippets.Endpoint.from_request(request)
    max_size, max_ttl = services.history_bounds(app.tenant_id)  # a downgrade applies at once
    return render(request, "tenants/app_detail.html", {
        "app": app, "secret": secret, "endpoint": endpoint,
        "history_size": min(app.history_size, max_size), "history_ttl": min(app.history_ttl, max_ttl),
        "snippets": snippets.all_for(app, endpoint, secret),
        "grace_active": app.previous_secret_active,
        "grace_period": _grace_period(),
    })


def _grace_period() -> str:
    """How long a rotated-out secret keeps working, in words ("1 day")."""
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=settings.TABCAST["SECRET_GRACE_SECONDS"]), now)


@require_POST
@tenant_app
def app_rotate(request, app):
    """New secret; the old one works for the grace period shown on the page."""
    services.rotate_secret(app)
    audit.info("secret of app %s rotated by user %s", app.id, request.user.pk)
    until = timezone.localtime(app.previous_secret_expires_at)
    messages.success(request, f"New secret generated. The previous secret keeps working until "
                              f"{until:%Y-%m-%d %H:%M} {until.tzname()}; update your servers before then.")
    return redirect("tenants:app_detail", app.id)


@require_POST
@tenant_app
def app_expire_previous(request, app):
    """Stop accepting the rotated-out secret before its grace period ends."""
    services.expire_previous_secret(app)
    audit.info("previous secret of app %s revoked by user %s", app.id, request.user.pk)
    messages.success(request, "The previous secret no longer works.")
    return redirect("tenants:app_detail", app.id)


@require_POST
@tenant_app
def app_status(request, app):
    """Enable (enabled=1) or disable (enabled=0) the app."""
    enabled = request.POST.get("enabled") == "1"
    services.set_enabled(app, enabled)
    state = "enabled" if enabled else "disabled: new connections and publishes are refused"
    messages.success(request, f"{app.name} is {state}.")
    return redirect("tenants:app_detail", app.id)


@tenant_app
def app_settings(request, app):
    """Name, features, message size limit and allowed origins."""
    form = AppSettingsForm(request.POST or None, instance=app)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved. They apply to new connections within seconds.")
        return redirect("tenants:app_settings", app.id)
    return render(request, "tenants/app_settings.html", {
        "app": app, "form": form, "attempts": webhook_log.recent(app), "attempts_kept": WebhookAttempt.KEEP,
        "test_channel": webhooks.TEST_CHANNEL})


@require_POST
@tenant_app
def app_webhook_test(request, app):
    """Send one signed test webhook to the saved URL now and log it with the other attempts."""
    if not app.webhook_url:
        messages.error(request, "Save a webhook URL first.")
        return redirect("tenants:app_settings", app.id)
    attempt = async_to_sync(webhooks.send_test)(services.to_info(app))
    webhook_log.record(app.id, attempt)
    if attempt.ok:
        messages.success(request, f"Test webhook delivered: HTTP {attempt.status} in {attempt.duration_ms} ms.")
    elif attempt.status is not None:
        messages.error(request, f"Your endpoint answered HTTP {attempt.status}; webhooks need a 2xx answer.")
    else:
        messages.error(request, f"Test webhook not delivered: {attempt.error}.")
    return redirect(reverse("tenants:app_settings", args=[app.id]) + "#webhooks")


@tenant_app
def app_delete(request, app):
    """Confirm by typing the app's name, then delete it and its keys."""
    form = AppDeleteForm(request.POST or None, app=app)
    if request.method == "POST" and form.is_valid():
        name, app_id = app.name, app.id
        services.delete_app(app)
        audit.info("app %s deleted by user %s", app_id, request.user.pk)
        messages.success(request, f"{name} was deleted. Its keys no longer work.")
        return redirect("tenants:app_list")
    return render(request, "tenants/app_delete.html", {"app": app, "form": form})
