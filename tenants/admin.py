from django.contrib import admin

from .models import App, Invitation, Membership, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    search_fields = ("name",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "joined_at")
    list_select_related = ("user", "tenant")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "tenant", "created_at", "accepted_at")
    exclude = ("token",)


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "tenant", "key", "enabled", "client_events", "demo_enabled", "created_at")
    list_filter = ("enabled", "client_events", "demo_enabled")
    search_fields = ("name", "key")
    readonly_fields = ("key", "previous_secret_expires_at", "created_at")
    exclude = ("previous_secret",)
