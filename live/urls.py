from django.urls import path

from . import views

app_name = "live"

urlpatterns = [
    path("apps/<int:app_id>/console/", views.console, name="console"),
    path("apps/<int:app_id>/console/publish/", views.publish_test_event, name="publish_test_event"),
    path("apps/<int:app_id>/console/history/", views.channel_history, name="channel_history"),
    path("realtime/auth/", views.realtime_auth, name="realtime_auth"),
]
