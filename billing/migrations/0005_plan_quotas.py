"""Message, connect-rate and client-event-rate quotas on plans, seeded for the public plans."""

from django.db import migrations, models

# code: (messages per UTC day, connects per second per app, client events per second per app)
QUOTAS = {
    "free": (200_000, 20, 100),
    "pro": (10_000_000, 200, 1_000),
    "business": (100_000_000, 1_000, 10_000),
}


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, (messages, connects, client_events) in QUOTAS.items():
        Plan.objects.filter(code=code).update(max_messages_per_day=messages, max_connects_per_second=connects,
                                              max_client_events_per_second=client_events)


class Migration(migrations.Migration):

    dependencies = [("billing", "0004_seed_plans")]

    operations = [
        migrations.AddField(
            model_name="plan", name="max_messages_per_day",
            field=models.PositiveBigIntegerField(
                blank=True, null=True,
                help_text="Publishes + deliveries + webhooks per UTC day, all apps. Empty: unlimited")),
        migrations.AddField(
            model_name="plan", name="max_connects_per_second",
            field=models.PositiveIntegerField(
                blank=True, null=True,
                help_text="New WebSocket connections per second, per app and process. Empty: unlimited")),
        migrations.AddField(
            model_name="plan", name="max_client_events_per_second",
            field=models.PositiveIntegerField(
                blank=True, null=True, help_text="Client events per second, per app and process. Empty: unlimited")),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
