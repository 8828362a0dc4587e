from django.contrib import admin

from .models import DailyUsage, HourlyUsage, Plan, Subscription


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "monthly_price_cents", "max_connections")


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
