"""Create or find Tabcast's products, prices and connection meter in Stripe, and store their ids."""

from django.core.management.base import BaseCommand, CommandError

from ...catalog import sync_catalog
from ...stripe_gateway import is_configured


class Command(BaseCommand):
    help = ("Make the Stripe account's catalog match the paid plans: one product per plan, a monthly "
            "flat price and a metered price on peak physical connections (found by lookup_key), and the "
            "Billing Meter (aggregation 'last', fed the billing period's running peak). Idempotent.")

    def handle(self, *args, **options):
        if not is_configured():
            raise CommandError("STRIPE_SECRET_KEY is not set: billing is not configured.")
        meter_id, synced = sync_catalog()
        self.stdout.write(f"Meter {meter_id}")
        for plan in synced:
            self.stdout.write(f"{plan.code}: flat {plan.price_id}, metered {plan.metered_price_id or '-'}")
