from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """The realtime engine: Pusher protocol 7 over WebSockets, fan-out per process."""

    name = "service.realtime"
    label = "realtime"

    def ready(self):
        from .lifespan import node_started
        from .metrics import on_node_started

        node_started.connect(on_node_started, dispatch_uid="realtime.metrics")
