from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """The realtime engine: Pusher protocol 7 over WebSockets, fan-out per process."""

    name = "service.realtime"
    label = "realtime"
