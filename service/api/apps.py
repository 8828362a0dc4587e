from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP API tenants' backends call: Pusher-compatible endpoints and /publish."""

    name = "service.api"
    label = "api"
