from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Accounts, teams (tenants), their apps with keys and secrets, and the dashboard."""

    name = "tenants"

    def ready(self):
        from . import signals  # noqa: F401 - connects the app-cache invalidation
