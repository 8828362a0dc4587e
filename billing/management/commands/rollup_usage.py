"""Persist the live usage buckets of every app into hourly and daily rollups."""

import asyncio

from django.apps import apps as django_apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from service.realtime.state import build_state

from ...metering import persist_apps


class Command(BaseCommand):
    help = ("Persist usage from the shared (Redis) live counters into hourly and daily rollups. "
            "Servers do this by themselves every BILLING_ROLLUP_SECONDS and at shutdown; run this "
            "from cron to cover hours in which no server ran a round.")

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=int, default=48, help="how many recent hours to read (buckets live 48 h)")

    def handle(self, *args, hours, **options):
        if not settings.REDIS_URL:
            raise CommandError("Embedded mode keeps live counters inside the server process, which persists "
                               "them itself; this command needs REDIS_URL to read shared counters.")
        app_ids = list(django_apps.get_model("tenants", "App").objects.values_list("id", flat=True))
        asyncio.run(self._persist(app_ids, hours))
        self.stdout.write(f"Persisted usage of {len(app_ids)} apps for the last {hours} hours.")

    async def _persist(self, app_ids, hours):
        state = build_state()
        await state.start()
        try:
            await persist_apps(state, app_ids, hours)
        finally:
            await state.stop()
