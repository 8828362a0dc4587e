"""Channel history (docs/recovery.md): per-plan bounds, seeded for the public plans, and the
recovery counters of the usage rollups (resumes recovered or not, messages and bytes stored)."""

from django.db import migrations, models

# code: (messages per channel, seconds after the channel's last publish)
HISTORY = {"free": (100, 120), "pro": (1_000, 900), "business": (5_000, 3_600)}

COUNTERS = {
    "resumes_recovered": "Subscriptions resumed from a position with every missed message replayed",
    "resumes_unrecovered": "Subscriptions told by tabcast:resumed that messages may have been missed",
    "stored_messages": "Messages written to channel history",
    "stored_bytes": "Bytes of those messages",
}


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, (size, ttl) in HISTORY.items():
        Plan.objects.filter(code=code).update(max_history_size=size, max_history_ttl=ttl)


class Migration(migrations.Migration):

    dependencies = [("billing", "0007_dashboardapp_moves_to_live")]

    operations = [
        migrations.AddField(
            model_name="plan", name="max_history_size",
            field=models.PositiveIntegerField(
                blank=True, null=True, help_text="Messages of history an app may keep per channel. Empty: unlimited")),
        migrations.AddField(
            model_name="plan", name="max_history_ttl",
            field=models.PositiveIntegerField(
                blank=True, null=True,
                help_text="Seconds an app may keep a channel's history after its last publish. Empty: unlimited")),
        *(migrations.AddField(model_name=model, name=name, field=models.BigIntegerField(default=0, help_text=help))
          for model in ("hourlyusage", "dailyusage") for name, help in COUNTERS.items()),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
