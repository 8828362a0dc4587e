from django.urls import path

from . import api, views

app_name = "billing"

urlpatterns = [
    path("apps/<int:app_id>/usage/", views.overview, name="usage"),
    # The usage page's first address, before its tab was named "Usage": bookmarks keep working.
    path("apps/<int:app_id>/overview/", views.overview, name="overview"),
    path("apps/<int:app_id>/console/", views.console, name="console"),
    path("apps/<int:app_id>/console/publish/", views.publish_test_event, name="publish_test_event"),
    path("realtime/auth/", views.realtime_auth, name="realtime_auth"),
    path("api/apps/<int:app_id>/usage", api.UsageView.as_view(), name="api_usage"),
    path("api/apps/<int:app_id>/live", api.LiveView.as_view(), name="api_live"),
]

# Stripe billing: the tenant's billing page, checkout and portal, and Stripe's webhook.
from . import stripe_webhooks  # noqa: E402 - kept with the routes it serves

urlpatterns += [
    path("billing/stripe/webhook", stripe_webhooks.stripe_webhook, name="stripe_webhook"),
]

from . import views_billing  # noqa: E402

urlpatterns += [
    path("billing/", views_billing.billing_page, name="billing"),
    path("billing/checkout/", views_billing.checkout, name="billing_checkout"),
    path("billing/portal/", views_billing.portal, name="billing_portal"),
]
