from django.contrib import admin

from .models import DailyUsage, HourlyUsage, Plan, Subscription


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "monthly_price_cents", "max_connections", "max_messages_per_day",
                    "max_connects_per_second", "max_client_events_per_second", "max_deliveries_per_second",
                    "max_history_size", "max_history_ttl")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("tenant", "plan", "stripe_customer_id")


@admin.register(HourlyUsage)
class HourlyUsageAdmin(admin.ModelAdmin):
    """Read-only: rows are readings of the live counters, written by metering."""

    list_display = ("app", "hour", "source", "messages", "deliveries", "logical_deliveries", "peak_sockets",
                    "peak_tabs")
    list_filter = ("hour",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DailyUsage)
class DailyUsageAdmin(HourlyUsageAdmin):
    list_display = ("app", "day", "messages", "deliveries", "logical_deliveries", "peak_sockets", "peak_tabs")
    list_filter = ("day",)


# --- Stripe billing ---------------------------------------------------------------------------

from .models import PlanPricing, ProcessedStripeEvent, StripeMeter, SubscriptionState, UsageReport  # noqa: E402


@admin.register(PlanPricing)
class PlanPricingAdmin(admin.ModelAdmin):
    list_display = ("plan", "included_connections", "overage_cents_per_connection", "stripe_metered_price_id")


@admin.register(StripeMeter)
class StripeMeterAdmin(admin.ModelAdmin):
    list_display = ("event_name", "stripe_meter_id")


@admin.register(SubscriptionState)
class SubscriptionStateAdmin(admin.ModelAdmin):
    list_display = ("subscription", "status", "current_period_start", "current_period_end", "last_event_at")
    list_filter = ("status",)


@admin.register(ProcessedStripeEvent)
class ProcessedStripeEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "type", "processed_at")
    search_fields = ("event_id",)


@admin.register(UsageReport)
class UsageReportAdmin(admin.ModelAdmin):
    list_display = ("identifier", "tenant", "window_start", "value", "status", "attempts")
    list_filter = ("status", "metric")
    search_fields = ("identifier",)
