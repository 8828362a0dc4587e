"""WebSocket routing: ``/app/<key>`` goes to the Pusher consumer, anything else gets a quiet 404.

Channels' ``URLRouter`` raises ``ValueError("No route found ...")`` for an unknown path, which
the server logs with a traceback and answers with HTTP 500. ``websocket_application`` refuses
the handshake instead: HTTP 404 through the ASGI WebSocket Denial Response extension when the
server offers it (uvicorn does), else a close before accept (HTTP 403), and logs nothing.
"""

from channels.routing import URLRouter
from django.urls import re_path

from .consumer import PusherConsumer

websocket_urlpatterns = [
    # pusher-js: {wsPath}/app/{key}?protocol=7&client=js&version=...
    # \Z, not $: "$" also matches before a trailing newline. The key's alphabet and length are
    # tenancy.KEY_RE's (get_app refuses anything else too, whoever calls it).
    re_path(r"^(?:[^?]*/)?app/(?P<key>[A-Za-z0-9_\-]{1,100})/?\Z", PusherConsumer.as_asgi()),
]

NOT_FOUND_BODY = b'{"error":"Not found: WebSocket connections go to /app/<key>","code":404}'


class QuietURLRouter(URLRouter):
    def matches(self, scope) -> bool:
        path = scope.get("path", "")
        root_path = scope.get("root_path", "")
        if root_path:
            if not path.startswith(root_path):
                return False
            path = path[len(root_path):]
        path = path.lstrip("/")
        return any(route.pattern.match(path) for route in self.routes)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not self.matches(scope):
            return await refuse_not_found(scope, receive, send)
        return await super().__call__(scope, receive, send)


async def refuse_not_found(scope, receive, send) -> None:
    message = await receive()  # websocket.connect
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions") or {}:
        await send({"type": "websocket.http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(NOT_FOUND_BODY))]})
        await send({"type": "websocket.http.response.body", "body": NOT_FOUND_BODY})
    else:
        await send({"type": "websocket.close", "code": 1008})


websocket_application = QuietURLRouter(websocket_urlpatterns)
