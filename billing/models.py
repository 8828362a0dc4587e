"""Plans and which plan each tenant is on."""

from django.db import models


class Plan(models.Model):
    """A price list entry; quotas count *physical* connections (one per browser with the SDK)."""

    code = models.SlugField(unique=True)
    name = models.CharField(max_length=80)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    max_connections = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited")
    stripe_price_id = models.CharField(max_length=120, blank=True, default="")

    def __str__(self):
        return self.name


class Subscription(models.Model):
    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT)
    stripe_customer_id = models.CharField(max_length=120, blank=True, default="")
    stripe_subscription_id = models.CharField(max_length=120, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.tenant} on {self.plan}"


class UsageCounters(models.Model):
    """What metering counts for one app over a period (an hour or a day)."""

    messages = models.BigIntegerField(default=0, help_text="Publishes accepted (HTTP API and client events)")
    deliveries = models.BigIntegerField(default=0, help_text="Frames written to physical sockets")
    bytes = models.BigIntegerField(default=0, help_text="Bytes of those frames")
    logical_deliveries = models.BigIntegerField(default=0, help_text="Frames one socket per tab would have needed")
    logical_bytes = models.BigIntegerField(default=0, help_text="Bytes one socket per tab would have needed")
    tab_seconds = models.FloatField(default=0, help_text="Logical tabs connected, times seconds connected")
    peak_sockets = models.PositiveIntegerField(default=0, help_text="Peak concurrent physical connections")
    peak_tabs = models.PositiveIntegerField(default=0, help_text="Peak concurrent logical clients (tabs)")

    COUNTERS = ("messages", "deliveries", "bytes", "logical_deliveries", "logical_bytes", "tab_seconds")
    PEAKS = ("peak_sockets", "peak_tabs")

    class Meta:
        abstract = True


class HourlyUsage(UsageCounters):
    """An app's usage in one hour as one store of live counters (``source``) reported it.

    The values are absolute readings of that store's bucket, so persisting them again is
    harmless. A process restart in embedded mode starts a new store with a new source; the
    hour's usage is the sum over its sources.
    """

    app = models.ForeignKey("tenants.App", on_delete=models.CASCADE, related_name="hourly_usage")
    hour = models.DateTimeField(help_text="Start of the hour (UTC)")
    source = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app", "hour", "source"], name="hourly_usage_once_per_source")]
        indexes = [models.Index(fields=["app", "hour"])]


class DailyUsage(UsageCounters):
    """An app's usage in one UTC day: the sum of its hours (peaks: the highest hour)."""

    app = models.ForeignKey("tenants.App", on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app", "day"], name="daily_usage_once_per_day")]


class DashboardApp(models.Model):
    """Points at the internal "Tabcast dashboard" app that carries live metrics to the dashboard."""

    ROLE = "dashboard"

    role = models.CharField(max_length=20, unique=True, default=ROLE)
    app = models.OneToOneField("tenants.App", on_delete=models.CASCADE, related_name="+")
