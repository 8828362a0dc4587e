"""Seed the public plans: quotas and included allowances count physical connections."""

from decimal import Decimal

from django.db import migrations

# (code, name, monthly price in cents, connection cap, included connections, overage cents each)
PLANS = [
    ("free", "Free", 0, 100, None, None),
    ("pro", "Pro", 4900, 5_000, 2_000, Decimal("1")),
    ("business", "Business", 29900, 50_000, 20_000, Decimal("0.5")),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    PlanPricing = apps.get_model("billing", "PlanPricing")
    for code, name, cents, cap, included, overage in PLANS:
        # get_or_create: an operator's own edits to an existing plan win over these defaults.
        plan, _ = Plan.objects.get_or_create(code=code, defaults={
            "name": name, "monthly_price_cents": cents, "max_connections": cap})
        if included is not None:
            PlanPricing.objects.get_or_create(plan=plan, defaults={
                "included_connections": included, "overage_cents_per_connection": overage})


class Migration(migrations.Migration):

    dependencies = [("billing", "0003_stripe_billing")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
