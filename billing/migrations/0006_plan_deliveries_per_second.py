"""Deliveries per second per app (cluster-wide), seeded for the public plans.

The caps keep one tenant well under what one server process writes (~100-200k deliveries/s
measured here), so it cannot take a whole process from its neighbours.
"""

from django.db import migrations, models

DELIVERIES_PER_SECOND = {"free": 2_000, "pro": 20_000, "business": 100_000}


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, rate in DELIVERIES_PER_SECOND.items():
        Plan.objects.filter(code=code).update(max_deliveries_per_second=rate)


class Migration(migrations.Migration):

    dependencies = [("billing", "0005_plan_quotas")]

    operations = [
        migrations.AddField(
            model_name="plan", name="max_deliveries_per_second",
            field=models.PositiveIntegerField(
                blank=True, null=True,
                help_text="Frames written to sockets per second, per app, cluster-wide (publishes wait). "
                          "Empty: unlimited")),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
