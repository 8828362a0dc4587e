from django.urls import path

from . import api, stripe_webhooks
from .views import subscription, usage

app_name = "billing"

urlpatterns = [
    path("apps/<int:app_id>/usage/", usage.overview, name="usage"),
    # The usage page's first address, before its tab was named "Usage": bookmarks keep working.
    path("apps/<int:app_id>/overview/", usage.overview, name="overview"),
    path("api/apps/<int:app_id>/usage", api.UsageView.as_view(), name="api_usage"),
    path("api/apps/<int:app_id>/live", api.LiveView.as_view(), name="api_live"),
]

# Stripe billing: the tenant's billing page, checkout and portal, and Stripe's webhook.
urlpatterns += [
    path("billing/stripe/webhook", stripe_webhooks.stripe_webhook, name="stripe_webhook"),
    path("billing/", subscription.billing_page, name="billing"),
    path("billing/checkout/", subscription.checkout, name="billing_checkout"),
    path("billing/portal/", subscription.portal, name="billing_portal"),
]
