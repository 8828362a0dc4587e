"""Report paying tenants' peak physical connections to Stripe for every closed hour."""

from django.core.management.base import BaseCommand, CommandError

from ...stripe_gateway import is_configured
from ...usage_reporting import report_usage


class Command(BaseCommand):
    help = ("Write one usage report per closed hour for each tenant with an active Stripe subscription "
            "(the billing period's running peak of physical connections) and send the pending ones as "
            "meter events. Safe to run as often as you like; run it hourly, a few minutes past the hour.")

    def handle(self, *args, **options):
        if not is_configured():
            raise CommandError("STRIPE_SECRET_KEY is not set: billing is not configured, nothing to report.")
        created, result = report_usage()
        self.stdout.write(f"{created} new hourly reports; sent {result.sent}, failed {result.failed}, "
                          f"still pending {result.pending}.")
