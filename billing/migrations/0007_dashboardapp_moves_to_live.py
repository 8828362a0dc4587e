from django.db import migrations


class Migration(migrations.Migration):
    """DashboardApp now belongs to the live app (live 0001); its table stays where it is."""

    dependencies = [
        ("billing", "0006_plan_deliveries_per_second"),
        ("live", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="DashboardApp")],
                                            database_operations=[]),
    ]
