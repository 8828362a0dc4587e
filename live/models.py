from django.db import models


class DashboardApp(models.Model):
    """Points at the internal "Tabcast dashboard" app that carries live metrics to the dashboard."""

    ROLE = "dashboard"

    role = models.CharField(max_length=20, unique=True, default=ROLE)
    app = models.OneToOneField("tenants.App", on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = "billing_dashboardapp"  # made by billing's migrations, before the live pages had an app
