from django.urls import path

from . import api, views

app_name = "billing"

urlpatterns = [
    path("apps/<int:app_id>/overview/", views.overview, name="overview"),
    path("apps/<int:app_id>/console/", views.console, name="console"),
    path("apps/<int:app_id>/console/publish/", views.publish_test_event, name="publish_test_event"),
    path("realtime/auth/", views.realtime_auth, name="realtime_auth"),
    path("api/apps/<int:app_id>/usage", api.UsageView.as_view(), name="api_usage"),
    path("api/apps/<int:app_id>/live", api.LiveView.as_view(), name="api_live"),
]
