from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP API tenants' backends call: Pusher-compatible endpoints and /publish."""

    name = "service.api"
    label = "api"

    def ready(self):
        from . import openapi  # noqa: F401 - registers the schema's authentication extensions
