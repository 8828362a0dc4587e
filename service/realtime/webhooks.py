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
from urllib.parse import urlsplit

import httpx
import orjson
from django.conf import settings

from . import signatures
from .tenancy import AppInfo

log = logging.getLogger(__name__)

RETRY_FOR_SECONDS = 300
MAX_IN_FLIGHT = 50
QUEUE_LIMIT = 10_000


class WebhookSender:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[AppInfo, bytes]] = asyncio.Queue(QUEUE_LIMIT)
        self._client = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._deliveries: set[asyncio.Task] = set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, app: AppInfo, event: dict) -> None:
        """Queue one event for the app's webhook URL (nothing happens if it has none)."""
        if not app.webhook_url:
            return
        body = orjson.dumps({"time_ms": int(time.time() * 1000), "events": [event]})
        try:
            self._queue.put_nowait((app, body))
        except asyncio.QueueFull:
            log.warning("webhook queue full; dropping %s for app %s", event.get("name"), app.id)

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
            return
        headers = {"Content-Type": "application/json", "X-Pusher-Key": app.key,
                   "X-Pusher-Signature": signatures.sign(app.secret, body.decode())}
        give_up_at = time.monotonic() + RETRY_FOR_SECONDS
        delay = 1.0
        while True:
            try:
                response = await self._client.post(app.webhook_url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if time.monotonic() + delay > give_up_at:
                log.warning("app %s: webhook failed for 5 minutes (%s); giving up", app.id, problem)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

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
