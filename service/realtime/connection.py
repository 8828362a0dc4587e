"""The outbound side of one socket: send a frame now, without a task per frame.

Fan-out writes the same text to thousands of sockets in a loop. An ``await send()`` per
socket would let one slow socket stall everyone, and a task per send costs more than the
write itself. Both uvicorn and daphne complete ``websocket.send`` without suspending while
the transport is writable, so :meth:`Connection.send` steps the send coroutine once by
hand: almost always it finishes right there. If it does suspend (the peer is not reading
and the transport paused writing), the rest of that send and any later frames go through a
per-socket backlog drained by one task; a socket whose backlog passes ``max_pending`` is
closed with 4100 so it reconnects later instead of growing memory without bound.

Fan-out also skips the ASGI send entirely when it can. With permessage-deflate off a
server's text frame is the same bytes for every socket, so the hub frames a broadcast once
(:func:`text_frame`) and, for a server we know (uvicorn's websockets-sansio protocol or
``ws_protocol.py``'s trimmed subclass of it,
daphne's autobahn protocol), :meth:`Connection.send` writes those bytes straight to the
socket's transport while the socket is open, writable and has nothing queued: one
``transport.write`` per subscriber instead of a coroutine, a message dict and a framing per
subscriber (bench/RESULTS.md: server CPU per delivery on uvicorn ~26 µs before, 12.5-20 µs
after, mostly the write syscall now). Anything else (unknown server, paused transport,
backlog) takes the ASGI path above, unchanged.
"""

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.protocol import State

from . import codes

log = logging.getLogger(__name__)

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


class Connection:
    """One physical socket as the hub sees it: identity plus a non-blocking send."""

    __slots__ = (
        "socket_id", "app", "_asgi_send", "_direct", "_write_direct", "_backlog", "_drainer", "closed", "max_pending",
        "channels", "user_id", "user_data", "tabs", "last_seen", "pinged", "origin",
        "_client_event_times",
    )

    def __init__(self, socket_id: str, app, asgi_send: AsgiSend, max_pending: int):
        self.socket_id = socket_id
        self.app = app
        self._asgi_send = asgi_send
        # The server's protocol object and how to write a framed text to it, when we know it.
        self._direct, self._write_direct = _direct_writer(asgi_send)
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
        self._client_event_times: deque[float] | None = None
        self.origin: str | None = None

    @property
    def client_event_times(self) -> deque[float]:
        """Times of recent client events (the 10/s limit); made on first use: an empty deque is 760 bytes."""
        if self._client_event_times is None:
            self._client_event_times = deque()
        return self._client_event_times

    def send(self, text: str, wire: bytes | None = None) -> None:
        """Write one text frame now if possible, else queue it; never blocks the caller.

        ``wire`` is ``text_frame(text)`` when the caller framed it once for many sockets.
        """
        if self.closed:
            return
        if self._direct is not None and self._backlog is None and \
                self._write_direct(self._direct, text_frame(text) if wire is None else wire):
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


def text_frame(text: str) -> bytes:
    """The RFC 6455 frame a server sends for ``text``: final, unmasked, no extensions."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


def _uvicorn_write(protocol, wire: bytes) -> bool:
    """uvicorn websockets-sansio: the checks its ``send()`` makes before writing, minus the await."""
    conn = protocol.conn
    if protocol.writable.is_set() and not protocol.close_sent and not protocol.disconnected \
            and conn.state is _OPEN and not conn.extensions:
        protocol.transport.write(wire)
        return True
    return False


def _autobahn_write(protocol, wire: bytes) -> bool:
    """daphne (autobahn): what ``sendMessage`` does for an open socket without compression."""
    if protocol.state == protocol.STATE_OPEN and protocol._perMessageCompress is None:  # noqa: SLF001
        protocol.sendData(wire)
        return True
    return False


_OPEN = State.OPEN
_UVICORN = {("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol"),
            ("service.realtime.ws_protocol", "LeanWebSocketProtocol")}  # serve's trimmed subclass
_DAPHNE = ("daphne.ws_protocol", "WebSocketProtocol")


def _direct_writer(asgi_send) -> tuple[Any, Callable[[Any, bytes], bool] | None]:
    """(protocol, write function) for a server whose socket we can write to directly, else (None, None).

    uvicorn hands the app its protocol's bound ``send``; daphne a ``partial(server.handle_reply,
    protocol)``. Matched by exact class so a subclass or another server falls back to ASGI.
    """
    protocol = getattr(asgi_send, "__self__", None)
    if protocol is not None and _class_of(protocol) in _UVICORN:
        return protocol, _uvicorn_write
    protocol = asgi_send.args[0] if isinstance(asgi_send, functools.partial) and asgi_send.args else None
    if protocol is not None and _class_of(protocol) == _DAPHNE:
        return protocol, _autobahn_write
    return None, None


def _class_of(obj) -> tuple[str, str]:
    return type(obj).__module__, type(obj).__qualname__


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
