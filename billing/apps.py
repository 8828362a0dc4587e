from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Plans, quotas on physical connections, usage records and Stripe."""

    name = "billing"

    def ready(self):
        from service.realtime.lifespan import node_started

        from .server_hooks import on_node_started

        node_started.connect(on_node_started, dispatch_uid="billing.server_hooks")
