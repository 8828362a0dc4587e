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
