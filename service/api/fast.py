"""The publish endpoints answered on the event loop, without Django's per-request threads.

Django's ASGI handler runs every sync middleware and the (sync) DRF view in worker threads,
and makes a new thread per request: bench/ measured ~5.7 ms of CPU and ~170 signed
publishes/s per process that way. The hot endpoints (``POST /apps/{id}/events``,
``/apps/{id}/batch_events`` and ``/publish``) are answered here instead, by exactly the code
the DRF views run (``authentication``, ``throttling``, ``publishing`` and its serializers),
with the same JSON errors. Everything else goes to Django, and so do these endpoints when
``TABCAST_FAST_PUBLISH=0`` (the test suite runs the HTTP API tests both ways).
"""

import asyncio
import logging
import re
import time
from urllib.parse import parse_qsl

import orjson
from django.conf import settings

from service.logs import begin_request
from service.realtime import metrics
from service.realtime.node import get_node
from service.realtime.tenancy import get_app

from . import publishing, validation
from .authentication import NO_CREDENTIALS, app_id_of, check_body_size, check_enabled, check_secret, \
    check_signature, parse_key_secret, signed_params
from .engine import BACKEND_TIMEOUT, is_backend_failure, report_backend_failure
from .errors import ApiError
from .throttling import take_token

log = logging.getLogger(__name__)

# Always fullmatch: "$" would also match before a trailing newline ("/apps/1/events%0A").
# Longer ids than any app can have (19 digits) go to Django, which answers them as the DRF
# views do (401 like a bad signature; 404 past Python's int() digit limit), so both agree.
SIGNED_ROUTE = re.compile(r"/apps/([0-9]{1,19})/(events|batch_events)")


class FastPublish:
    """ASGI middleware: serves the publish endpoints itself, passes everything else on."""

    def __init__(self, app):
        self.app = app
        self.enabled = settings.TABCAST["FAST_PUBLISH"]

    async def __call__(self, scope, receive, send):
        if not self.enabled or scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        signed = SIGNED_ROUTE.fullmatch(path)
        if signed is None and path != "/publish":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500
        try:
            status = await self._serve(scope, receive, send, path, signed)
        finally:
            metrics.http_request_done(signed.group(2) if signed else "publish", status, started)

    async def _serve(self, scope, receive, send, path: str, signed) -> int:
        # What the RequestId and HttpMetrics middlewares do for Django, done inline: ~1 µs, not ~12.
        headers = {"x-request-id": begin_request(scope)}
        try:
            body = await _read_body(scope, receive)
            if signed is not None:
                app = await _signed_app(scope, path, app_id_of(signed.group(1)), body)
            else:
                app = await _basic_app(scope)
            check_enabled(app)
            wait = take_token(app.id)
            if wait is not None:
                raise ApiError(429, f"Request was throttled. Expected available in {wait:.3f} seconds.",
                               retry_after=wait)
            payload = validation.json_body(body, _header(scope, b"content-type"))
            status, answer = 200, await _publish(signed.group(2) if signed else "publish", app, payload)
        except ApiError as error:
            status, answer = error.status, {"error": error.message, "code": error.status, **error.extra}
            if error.retry_after is not None:
                headers["retry-after"] = str(max(1, round(error.retry_after)))
            if status == 401:
                headers["www-authenticate"] = 'Pusher realm="tabcast"' if signed else 'Basic realm="tabcast"'
        await _respond(send, status, answer, headers)
        return status


async def _read_body(scope, receive) -> bytes:
    limit = settings.TABCAST["MAX_REQUEST_BYTES"]
    for name, value in scope["headers"]:
        if name == b"content-length" and int(value or 0) > limit:
            check_body_size(int(value))  # raises the 413
    message = await receive()
    body = message.get("body", b"")
    if len(body) > limit:
        check_body_size(len(body))
    if not message.get("more_body"):
        return body  # the usual case: the whole body in one message
    chunks, size = [body], len(body)
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        check_body_size(size)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _query(query_string: bytes) -> dict[str, str]:
    """``dict(parse_qsl(..., keep_blank_values=True))`` of the latin-1 query string.

    Without ``%`` or ``+`` there is nothing to unescape (signed requests from the ``pusher``
    libraries look like that), so splitting is the same result at a quarter of the cost.
    """
    query = query_string.decode("latin-1")
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    params = {}
    for field in query.split("&"):
        if field:
            name, _, value = field.partition("=")
            params[name] = value
    return params


async def _signed_app(scope, path: str, app_id: int | None, body: bytes):
    params = signed_params(_query(scope["query_string"]))
    # An unknown (or impossible) app id is answered like a bad signature: ids can't be probed.
    app = await get_app(app_id=app_id) if app_id is not None else None
    return check_signature(app, "POST", path, params, body)


async def _basic_app(scope):
    header = _header(scope, b"authorization")
    if not header:
        raise ApiError(401, NO_CREDENTIALS)
    key, secret = parse_key_secret(header)
    return check_secret(await get_app(key=key), secret)


async def _publish(kind: str, app, payload) -> dict:
    if kind == "batch_events":
        events = publishing.batch_from(app, payload)
    else:
        events = [(publishing.event_from if kind == "events" else publishing.simple_event_from)(app, payload)]
    node = await get_node()
    try:
        # asyncio.timeout, not wait_for: the same deadline without a task per publish.
        async with asyncio.timeout(BACKEND_TIMEOUT):
            infos = await publishing.publish(node, app, events)
    except Exception as exc:
        if is_backend_failure(exc):
            report_backend_failure(exc)
            raise ApiError(503, "The realtime backend is unavailable; retry shortly", retry_after=1) from exc
        raise
    # Answer in the next loop iteration: the broker's pump delivers the frame locally first,
    # and the answers to every publish handled in this iteration leave together. Under load
    # that costs the server less CPU per publish than answering at once (bench, loopback:
    # ~98 vs ~133 us; fewer wake-ups of the reading side), for one iteration of latency.
    await asyncio.sleep(0)
    if kind == "batch_events":
        return publishing.batch_answer(events, infos)
    if kind == "events":
        return publishing.events_answer(events[0], infos)
    return publishing.simple_answer(events[0])


async def _respond(send, status: int, answer: dict, headers: dict[str, str]) -> None:
    body = orjson.dumps(answer)
    response_headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if headers:
        response_headers += ((k.encode(), v.encode()) for k, v in headers.items())
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})
