"""Plans and which plan each tenant is on."""

from django.db import models

from service.realtime.state.base import TRAFFIC_FIELDS


class Plan(models.Model):
    """A price list entry; quotas count *physical* connections (one per browser with the SDK)."""

    code = models.SlugField(unique=True)
    name = models.CharField(max_length=80)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    max_connections = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited")
    # Quotas (billing/METERING.md, "Quotas"): messages are counted as Pusher counts them, per
    # tenant and UTC day; connects/s and client events/s are per app and per server process;
    # deliveries/s is per app, measured cluster-wide every second.
    max_messages_per_day = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Publishes + deliveries + webhooks per UTC day, all apps. Empty: unlimited")
    max_connects_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="New WebSocket connections per second, per app and process. Empty: unlimited")
    max_client_events_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Client events per second, per app and process. Empty: unlimited")
    max_deliveries_per_second = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Frames written to sockets per second, per app, cluster-wide (publishes wait). Empty: unlimited")
    # Channel history (docs/recovery.md): the most an app of the plan may keep per channel, and for
    # how long; each app picks its own values up to these in its Settings (tenants' App.history_*).
    max_history_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Messages of history an app may keep per channel. Empty: unlimited")
    max_history_ttl = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Seconds an app may keep a channel's history after its last publish. Empty: unlimited")
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
    resumes_recovered = models.BigIntegerField(
        default=0, help_text="Subscriptions resumed from a position with every missed message replayed")
    resumes_unrecovered = models.BigIntegerField(
        default=0, help_text="Subscriptions told by tabcast:resumed that messages may have been missed")
    stored_messages = models.BigIntegerField(default=0, help_text="Messages written to channel history")
    stored_bytes = models.BigIntegerField(default=0, help_text="Bytes of those messages")

    COUNTERS = (*TRAFFIC_FIELDS, "tab_seconds")
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


# --- Stripe billing ---------------------------------------------------------------------------


class PlanPricing(models.Model):
    """The Stripe side of a paid plan: its product and the metered price on peak connections."""

    # The flat price (Plan.stripe_price_id) includes `included_connections`; each physical
    # connection of the billing period's peak above that costs `overage_cents_per_connection`.

    plan = models.OneToOneField(Plan, on_delete=models.CASCADE, related_name="pricing")
    included_connections = models.PositiveIntegerField()
    overage_cents_per_connection = models.DecimalField(max_digits=10, decimal_places=4)
    stripe_product_id = models.CharField(max_length=120, blank=True, default="")
    stripe_metered_price_id = models.CharField(max_length=120, blank=True, default="")

    def __str__(self):
        return f"{self.plan} pricing"


class StripeMeter(models.Model):
    """The Billing Meter that receives a meter event name (one meter per event name in Stripe)."""

    event_name = models.CharField(max_length=100, unique=True)
    stripe_meter_id = models.CharField(max_length=120)

    def __str__(self):
        return self.event_name


class SubscriptionState(models.Model):
    """What Stripe last told us about a tenant's subscription (webhooks keep it current)."""

    BILLABLE_STATUSES = ("active", "trialing", "past_due")

    subscription = models.OneToOneField(Subscription, on_delete=models.CASCADE, related_name="state")
    status = models.CharField(max_length=30, blank=True, default="")
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    # Kept when a new period starts, so the old period's last hours can still be reported.
    previous_period_start = models.DateTimeField(null=True, blank=True)
    previous_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    last_event_at = models.DateTimeField(null=True, blank=True, help_text="`created` of the newest event applied")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.subscription}: {self.status or 'no status'}"

    @property
    def is_billable(self) -> bool:
        return self.status in self.BILLABLE_STATUSES


class ProcessedStripeEvent(models.Model):
    """A webhook event already applied: saved with its side effects, so a redelivery is a no-op."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    processed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.event_id} ({self.type})"


class UsageReport(models.Model):
    """One meter event for one closed hour: the period's running peak of physical connections."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    PEAK_CONNECTIONS = "peak_connections"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="usage_reports")
    metric = models.CharField(max_length=40, default=PEAK_CONNECTIONS)
    window_start = models.DateTimeField(help_text="Start of the reported hour (UTC)")
    period_start = models.DateTimeField(help_text="Start of the billing period the value belongs to")
    value = models.PositiveIntegerField()
    identifier = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "metric", "window_start"],
                                               name="usage_report_once_per_window")]
        indexes = [models.Index(fields=["status", "window_start"])]

    def __str__(self):
        return self.identifier
