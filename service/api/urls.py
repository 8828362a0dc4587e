from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import views

app_name = "api"

urlpatterns = [
    path("apps/<int:app_id>/events", views.EventsView.as_view(), name="events"),
    path("apps/<int:app_id>/batch_events", views.BatchEventsView.as_view(), name="batch_events"),
    path("apps/<int:app_id>/channels", views.ChannelsView.as_view(), name="channels"),
    path("apps/<int:app_id>/channels/<str:channel_name>", views.ChannelView.as_view(), name="channel"),
    path("apps/<int:app_id>/channels/<str:channel_name>/users", views.ChannelUsersView.as_view(), name="users"),
    path("apps/<int:app_id>/channels/<str:channel_name>/history", views.ChannelHistoryView.as_view(),
         name="history"),
    path("apps/<int:app_id>/users/<str:user_id>/terminate_connections",
         views.TerminateConnectionsView.as_view(), name="terminate"),
    # pusher-http-python leaves /apps/{id} out of this one path; the app comes from auth_key.
    path("users/<str:user_id>/terminate_connections", views.TerminateConnectionsView.as_view(),
         name="terminate_unscoped"),
    path("publish", views.PublishView.as_view(), name="publish"),
    path("healthz", views.health, name="health"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
]
