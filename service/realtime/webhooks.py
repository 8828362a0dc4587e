"""Pusher-format webhooks: tell a tenant's backend about channel and member lifecycle events.

Each event is POSTed as ``{"time_ms": ..., "events": [event]}`` with ``Content-Type:
application/json``, ``X-Pusher-Key`` and ``X-Pusher-Signature`` (hex HMAC-SHA256 of the body
with the app secret), so the official libraries' webhook validators accept it. A non-2xx
answer or a network error is retried with exponential backoff for up to five minutes, as
Pusher does. Delivery never blocks the socket path: events go through a queue.

Tabcast is hosted, so by default webhooks never go to loopback, private or link-local
addresses (a tenant must not make us call our own internal network);
``TABCAST_WEBHOOKS_ALLOW_PRIVATE=1`` lifts that for self-hosting and tests.
"""

import asyncio
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import orjson
from django.conf import settings

from . import metrics, signatures
from .floods import dropped_webhooks
from .tenancy import AppInfo

log = logging.getLogger(__name__)

RETRY_FOR_SECONDS = 300
MAX_IN_FLIGHT = 50
QUEUE_LIMIT = 10_000


# What the dashboard's "send test webhook" button sends: a real event name, so the tenant's
# handler and signature check see exactly what they will see live, on a channel no client uses.
TEST_CHANNEL = "tabcast-test-webhook"
REFUSED = "not sent: the URL points at a private or unresolvable address"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST of a webhook body: when, which events, the HTTP status or what went wrong."""

    at: float
    url: str
    events: tuple[str, ...]
    status: int | None = None
    error: str = ""
    duration_ms: int = 0
    test: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signed_headers(app: AppInfo, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Pusher-Key": app.key,
            "X-Pusher-Signature": signatures.sign(app.secret, body.decode())}


async def post_once(client: httpx.AsyncClient, app: AppInfo, body: bytes, *, test: bool = False) -> Attempt:
    """POST ``body`` to the app's webhook URL once (the SSRF check already done), as an Attempt."""
    names = tuple(event.get("name", "") for event in orjson.loads(body).get("events", ()))
    started, at = time.monotonic(), time.time()
    status, error = None, ""
    try:
        response = await client.post(app.webhook_url, content=body, headers=signed_headers(app, body))
        status = response.status_code
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    return Attempt(at, app.webhook_url, names, status, error, round((time.monotonic() - started) * 1000), test)


async def send_test(app: AppInfo) -> Attempt:
    """The Settings page's test: one signed ``channel_occupied`` for TEST_CHANNEL, no retries."""
    body = orjson.dumps({"time_ms": int(time.time() * 1000),
                         "events": [{"name": "channel_occupied", "channel": TEST_CHANNEL}]})
    if not await _allowed_destination(app.webhook_url):
        return Attempt(time.time(), app.webhook_url, ("channel_occupied",),
                       error=REFUSED, test=True)
    async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as client:
        return await post_once(client, app, body, test=True)


class WebhookSender:
    def __init__(self, on_queued=None, on_attempt=None) -> None:
        # Called with the app id of each event queued: metering counts a webhook as a message.
        self.on_queued = on_queued
        # Awaited with (app, Attempt) after each POST: the dashboard's delivery log (tenants).
        self.on_attempt = on_attempt
        self._queue: asyncio.Queue[tuple[AppInfo, bytes]] = asyncio.Queue(QUEUE_LIMIT)
        self._client = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._deliveries: set[asyncio.Task] = set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, app: AppInfo, event: dict) -> None:
        """Queue one event for the app's webhook URL (nothing happens if it has none)."""
        if not app.webhook_url:
            return
        if app.webhook_events is not None and event.get("name") not in app.webhook_events:
            return  # the team did not ask for this kind of event (Settings → Webhooks)
        body = orjson.dumps({"time_ms": int(time.time() * 1000), "events": [event]})
        try:
            self._queue.put_nowait((app, body))
        except asyncio.QueueFull:
            metrics.webhook("dropped")
            if dropped_webhooks.hit(f"app {app.id}", str(event.get("name"))):  # a flood of them: one summary line
                log.warning("webhook queue full; dropping %s for app %s", event.get("name"), app.id)
            return
        if self.on_queued is not None:
            self.on_queued(app.id)

    async def _run(self) -> None:
        while True:
            app, body = await self._queue.get()
            await self._slots.acquire()
            task = asyncio.get_running_loop().create_task(self._deliver(app, body))
            self._deliveries.add(task)
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task) -> None:
        self._deliveries.discard(task)
        self._slots.release()

    async def _deliver(self, app: AppInfo, body: bytes) -> None:
        if not await _allowed_destination(app.webhook_url):
            log.warning("app %s: webhook URL points at a private address; not sending", app.id)
            names = tuple(event.get("name", "") for event in orjson.loads(body).get("events", ()))
            await self._record(app, Attempt(time.time(), app.webhook_url, names, error=REFUSED))
            return
        give_up_at = time.monotonic() + RETRY_FOR_SECONDS
        delay = 1.0
        while True:
            attempt = await post_once(self._client, app, body)
            await self._record(app, attempt)
            if attempt.ok:
                return
            problem = f"HTTP {attempt.status}" if attempt.status is not None else attempt.error
            if time.monotonic() + delay > give_up_at:
                log.warning("app %s: webhook failed for 5 minutes (%s); giving up", app.id, problem)
                metrics.webhook("gave_up")
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _record(self, app: AppInfo, attempt: Attempt) -> None:
        # /metrics: each attempt of the sender (tabcast_webhooks_total{outcome})
        metrics.webhook("delivered" if attempt.ok else "blocked" if attempt.error == REFUSED else "error")
        if self.on_attempt is None:
            return
        try:
            await self.on_attempt(app, attempt)
        except Exception:  # noqa: BLE001 - the log is for people; delivery goes on without it
            log.warning("app %s: could not record a webhook attempt", app.id, exc_info=True)

    async def close(self) -> None:
        self._task.cancel()
        for task in list(self._deliveries):
            task.cancel()
        await self._client.aclose()


async def _allowed_destination(url: str) -> bool:
    if settings.TABCAST["WEBHOOKS_ALLOW_PRIVATE"]:
        return True
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443,
                                                             type=socket.SOCK_STREAM)
    except OSError:
        return False
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved:
            return False
    return True
