from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("service.api.urls")),
    path("admin/", admin.site.urls),
    path("", include("tenants.urls")),
]
