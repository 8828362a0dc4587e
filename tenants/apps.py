from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Accounts, teams (tenants), their apps with keys and secrets, and the dashboard."""

    name = "tenants"

    def ready(self):
        from service.realtime.lifespan import node_started

        from . import signals  # noqa: F401 - connects the app-cache invalidation
        from .webhook_log import on_node_started

        node_started.connect(on_node_started, dispatch_uid="tenants.webhook_log")
