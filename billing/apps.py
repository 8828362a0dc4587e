from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Plans, quotas on physical connections, usage records and Stripe."""

    name = "billing"
