from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    """DashboardApp moves here from billing: the table stays (billing_dashboardapp), only Django's
    idea of which app owns it changes (billing 0007 drops it from billing's state)."""

    initial = True

    dependencies = [
        ("billing", "0006_plan_deliveries_per_second"),
        ("tenants", "0006_webhook_settings"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DashboardApp",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("role", models.CharField(default="dashboard", max_length=20, unique=True)),
                        ("app", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                                     to="tenants.app")),
                    ],
                    options={"db_table": "billing_dashboardapp"},
                ),
            ],
            database_operations=[],
        ),
    ]
