from django.apps import AppConfig


class LiveConfig(AppConfig):
    """The dashboard's live side: the usage page's live numbers and the debug console, fed through
    the internal "Tabcast dashboard" app's private channels (``dashboard_app.py``)."""

    name = "live"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from service.realtime.lifespan import node_started

        from .server_hooks import on_node_started

        node_started.connect(on_node_started, dispatch_uid="live.server_hooks")
