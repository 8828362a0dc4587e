from django.urls import re_path

from .consumer import PusherConsumer

websocket_urlpatterns = [
    # pusher-js: {wsPath}/app/{key}?protocol=7&client=js&version=...
    re_path(r"^(?:[^?]*/)?app/(?P<key>[A-Za-z0-9_\-]{1,100})/?$", PusherConsumer.as_asgi()),
]
