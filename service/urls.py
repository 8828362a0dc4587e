from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("service.api.urls")),  # Pusher HTTP API, /publish, /healthz, /api/schema
    path("", include("service.sdk.urls")),  # /sdk/v1/..., /demo/
    path("admin/", admin.site.urls),
    path("dashboard/", include("billing.urls")),  # usage, metering pages and API
    path("", include("tenants.urls")),  # sign up, log in, apps
]
