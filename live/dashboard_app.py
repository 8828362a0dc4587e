"""The internal "Tabcast dashboard" app: its private channels carry live metrics and debug events."""

from django.db import IntegrityError, transaction

from service.realtime.tenancy import AppInfo, get_app_sync
from tenants.services import create_app

from .models import DashboardApp

NAME = "Tabcast dashboard"
METRICS_PREFIX = "private-metrics-"
DEBUG_PREFIX = "private-debug-"


def dashboard_app() -> AppInfo:
    """The system app, created on first use; concurrent first uses end up with the same one."""
    row = DashboardApp.objects.filter(role=DashboardApp.ROLE).first()
    if row is None:
        app = create_app(NAME)
        try:
            with transaction.atomic():
                row = DashboardApp.objects.create(app=app)
        except IntegrityError:  # another process won the race: keep its app, drop ours
            app.delete()
            row = DashboardApp.objects.get(role=DashboardApp.ROLE)
    return get_app_sync(app_id=row.app_id)


def metrics_channel(app_id: int) -> str:
    return f"{METRICS_PREFIX}{app_id}"


def debug_channel(app_id: int) -> str:
    return f"{DEBUG_PREFIX}{app_id}"


def watched_app_id(channel: str) -> int | None:
    """The app a dashboard channel is about (private-metrics-7 -> 7), or None if it is not one."""
    for prefix in (METRICS_PREFIX, DEBUG_PREFIX):
        digits = channel[len(prefix):]
        if channel.startswith(prefix) and digits.isascii() and digits.isdigit():
            return int(digits)
    return None
