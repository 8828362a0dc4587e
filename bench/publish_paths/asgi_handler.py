"""Prototype: signed publishes answered at the ASGI level, on the event loop, no threads."""

import re
import time
from urllib.parse import parse_qsl

import orjson

from service.asgi import application as django_application
from service.realtime import signatures
from service.realtime.node import get_node
from service.realtime.tenancy import get_app

EVENTS = re.compile(r"^/apps/(\d+)/events$")


async def application(scope, receive, send):
    match = EVENTS.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
    if match is None:
        return await django_application(scope, receive, send)
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    params = {k.lower(): v for k, v in parse_qsl(scope["query_string"].decode())}
    app = await get_app(app_id=int(match[1]))
    to_sign = signatures.request_string_to_sign("POST", scope["path"], params)
    if app is None or params.get("auth_key") != app.key or abs(time.time() - int(params["auth_timestamp"])) > 600 \
            or params.get("body_md5") != signatures.body_md5(body) \
            or not signatures.matches(app.valid_secrets(), to_sign, params.get("auth_signature", "")):
        return await _reply(send, 401, {"error": "Invalid signature"})
    event = orjson.loads(body)
    node = await get_node()
    await node.publish(app, event["channels"], event["name"], event["data"], event.get("socket_id"))
    await _reply(send, 200, {})


async def _reply(send, status: int, obj) -> None:
    body = orjson.dumps(obj)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
