from django.apps import AppConfig


class SdkConfig(AppConfig):
    """Serves the browser SDK (versioned URLs), its SharedWorker frame, and the live demo page."""

    name = "service.sdk"
    label = "sdk"
