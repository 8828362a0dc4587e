from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from service.static_views import serve as serve_static  # async iterator: no ASGI warning per file

urlpatterns = [
    path("", include("service.api.urls")),  # Pusher HTTP API, /publish, /healthz, /api/schema
    path("", include("service.sdk.urls")),  # /sdk/v1/..., /demo/
    path("admin/", admin.site.urls),
    path("dashboard/", include("billing.urls")),  # usage, metering pages and API
    path("dashboard/", include("live.urls")),  # the debug console, the live pages' channel auth
    path("", include("tenants.urls")),  # sign up, log in, apps
    # The dashboard's few CSS/JS files, served by Django itself so the one-process embedded mode
    # needs no separate web server (a CDN or proxy in front may cache them).
    re_path(rf"^{settings.STATIC_URL.strip('/')}/(?P<path>.*)$", serve_static, {"insecure": True}),
]
