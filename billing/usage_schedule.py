"""Run usage reporting every hour inside a server process, a few minutes past the hour.

Several processes may each run it: report rows are unique per hour and meter events carry
their identifier as idempotency key, so overlapping runs cannot bill twice.
"""

import asyncio
import logging
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.utils import timezone

from . import usage_reporting

log = logging.getLogger(__name__)

# After usage_reporting.SETTLE, so the hour just ended is complete when it is reported.
RUN_AT_MINUTE = 7


def next_run(now: datetime) -> datetime:
    """The next HH:07 strictly after ``now``."""
    candidate = now.replace(minute=RUN_AT_MINUTE, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(hours=1)


async def report_hourly(*, clock=timezone.now, sleep=asyncio.sleep) -> None:
    """Forever: wait for the next run, report, and keep going whatever one run hit."""
    while True:
        now = clock()
        await sleep((next_run(now) - now).total_seconds())
        try:
            created, result = await sync_to_async(usage_reporting.report_usage, thread_sensitive=False)()
        except Exception:  # noqa: BLE001 - e.g. the database is away: the next hour retries everything
            log.exception("Usage reporting failed; pending reports go out on the next run")
            continue
        log.info("Usage reporting: %d new hourly reports; sent %d, failed %d, pending %d",
                 created, result.sent, result.failed, result.pending)
