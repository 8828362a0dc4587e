"""The outbound side of one socket: send a frame now, without a task per frame.

Fan-out writes the same text to thousands of sockets in a loop. An ``await send()`` per
socket would let one slow socket stall everyone, and a task per send costs more than the
write itself. Both uvicorn and daphne complete ``websocket.send`` without suspending while
the transport is writable, so :meth:`Connection.send` steps the send coroutine once by
hand: almost always it finishes right there. If it does suspend (the peer is not reading
and the transport paused writing), the rest of that send and any later frames go through a
per-socket backlog drained by one task; a socket whose backlog passes ``max_pending`` is
closed with 4100 so it reconnects later instead of growing memory without bound.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from . import codes

log = logging.getLogger(__name__)

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


class Connection:
    """One physical socket as the hub sees it: identity plus a non-blocking send."""

    __slots__ = (
        "socket_id", "app", "_asgi_send", "_backlog", "_drainer", "closed", "max_pending",
        "channels", "user_id", "user_data", "tabs", "last_seen", "pinged", "origin",
        "client_event_times",
    )

    def __init__(self, socket_id: str, app, asgi_send: AsgiSend, max_pending: int):
        self.socket_id = socket_id
        self.app = app
        self._asgi_send = asgi_send
        self._backlog: deque[dict[str, Any]] | None = None
        self._drainer: asyncio.Task | None = None
        self.closed = False
        self.max_pending = max_pending
        self.channels: dict[str, Any] = {}  # channel -> presence member (or None)
        self.user_id: str | None = None  # set by pusher:signin
        self.user_data: dict | None = None
        self.tabs = 1  # logical clients carried (a SharedWorker reports more)
        self.last_seen = 0.0
        self.pinged = False
        self.client_event_times: deque[float] = deque()  # for the 10 client events/s limit
        self.origin: str | None = None

    def send(self, text: str) -> None:
        """Write one text frame now if possible, else queue it; never blocks the caller."""
        if self.closed:
            return
        message = {"type": "websocket.send", "text": text}
        if self._backlog is not None:
            self._enqueue(message)
            return
        coro = self._asgi_send(message)
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return  # the common case: written synchronously
        except Exception:  # noqa: BLE001 - the peer went away; its disconnect cleans up
            self.closed = True
            return
        self._backlog = deque()
        self._drainer = asyncio.get_running_loop().create_task(self._finish_then_drain(coro, waiting_on))

    def _enqueue(self, message: dict[str, Any]) -> None:
        self._backlog.append(message)
        if len(self._backlog) > self.max_pending:
            log.info("closing slow socket %s: %d frames pending", self.socket_id, len(self._backlog))
            self._backlog.clear()
            self._backlog.append({"type": "websocket.close", "code": codes.OVER_CAPACITY,
                                  "reason": "Too many pending frames: the client is not reading"})
            self.closed = True

    async def _finish_then_drain(self, coro, waiting_on) -> None:
        try:
            # Resume the send we started: wait for what it was waiting on, then let it finish.
            if waiting_on is not None:
                await waiting_on
            await _Resume(coro)
            while self._backlog:
                await self._asgi_send(self._backlog.popleft())
        except Exception:  # noqa: BLE001 - the peer went away
            self.closed = True
        finally:
            self._backlog = None
            self._drainer = None

    async def close(self, code: int, reason: str = "") -> None:
        """Close the socket with a Pusher close code (after any queued frames)."""
        if self.closed:
            return
        self.closed = True
        message = {"type": "websocket.close", "code": code, "reason": reason}
        if self._backlog is not None:
            self._backlog.append(message)
            return
        try:
            await self._asgi_send(message)
        except Exception:  # noqa: BLE001 - already gone
            pass


class _Resume:
    """Await a coroutine that has already been started and is suspended on a future."""

    __slots__ = ("coro",)

    def __init__(self, coro):
        self.coro = coro

    def __await__(self):
        return (yield from _drive(self.coro))


def _drive(coro):
    value = None
    while True:
        try:
            fut = coro.send(value)
        except StopIteration as stop:
            return stop.value
        value = yield fut
