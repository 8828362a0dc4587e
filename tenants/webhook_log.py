"""The last webhook delivery attempts of each app, for its Settings page.

Every server process sends webhooks; each records its attempts here, in the database, so the
dashboard (served by whichever process) shows them all. Only the last ``WebhookAttempt.KEEP``
per app are kept: each write trims the older ones.
"""

import logging
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.db import IntegrityError

from .models import App, WebhookAttempt

log = logging.getLogger(__name__)


def record(app_id: int, attempt) -> None:
    """Save one attempt (a ``service.realtime.webhooks.Attempt``) and drop the app's older ones."""
    try:
        WebhookAttempt.objects.create(
            app_id=app_id, at=datetime.fromtimestamp(attempt.at, UTC), url=attempt.url[:500],
            events=",".join(attempt.events)[:200], status=attempt.status, error=attempt.error[:200],
            duration_ms=max(0, int(attempt.duration_ms)), test=attempt.test)
    except IntegrityError:  # the app was deleted meanwhile
        return
    stale = list(WebhookAttempt.objects.filter(app_id=app_id)
                 .values_list("id", flat=True)[WebhookAttempt.KEEP:])
    if stale:
        WebhookAttempt.objects.filter(id__in=stale).delete()


def recent(app: App):
    """The app's last attempts, newest first."""
    return app.webhook_attempts.all()[:WebhookAttempt.KEEP]


async def _record_async(app, attempt) -> None:
    await sync_to_async(record, thread_sensitive=False)(app.id, attempt)


def on_node_started(sender, node, **kwargs) -> None:
    """``node_started`` receiver: log this process's webhook attempts for the dashboard."""
    node.webhooks.on_attempt = _record_async
