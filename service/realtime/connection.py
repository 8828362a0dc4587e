"""The outbound side of one socket: send a frame now, never block, never hold unbounded memory.

Fan-out writes the same text to thousands of sockets in a loop, so a send must not suspend
(one slow socket would stall everyone) and must not start a task (that costs more than the
write). With permessage-deflate off a server's text frame is the same bytes for every socket,
so the hub frames a broadcast once (:func:`text_frame`) and, for a server we know (uvicorn's
websockets-sansio protocol or ``ws_protocol.py``'s trimmed subclass of it, daphne's autobahn
protocol), :meth:`Connection.send` writes those bytes straight to the socket's transport: one
``transport.write`` per subscriber (bench/RESULTS.md: ~26 µs of server CPU per delivery
through the ASGI send, 12.5-20 µs direct, mostly the write syscall).

Slow readers. The transport's write buffer *is* the socket's backlog: when the kernel will not
take more, the transport keeps the bytes, in order, and writes them as the peer reads. A
reader that pauses and catches up gets every frame in order. Once a socket's buffered bytes
would pass ``max_pending_bytes`` (``TABCAST_MAX_PENDING_BYTES``; a bound in bytes, so a flood
of 100-byte frames is bounded like one of 10 KB frames) the socket is closed with 4100: the
close frame is queued behind what is pending, the consumer is told at once (so its
subscriptions, presence, counts and quota slot are released now, not when the peer wakes up),
and if the peer has not finished the close within ``close_deadline`` seconds the connection is
reset, which frees its buffers here and in the kernel. Nothing here ever awaits the peer.

A server we do not know (or a socket with an extension negotiated) goes through the ASGI
``send``: frames wait in a per-socket queue, bounded the same way in bytes, drained by one task
that awaits each send properly.
"""

import asyncio
import functools
import logging
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.protocol import State

from . import codes, metrics
from .floods import slow_closes

log = logging.getLogger(__name__)

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]

SLOW_READER_REASON = "Client is not reading: too much data pending"
WRITE_CHUNK = 64 * 1024  # bytes of frames written at once by send_many (the transport's default high-water mark)
TWISTED_POLL = 0.005  # seconds between looks at a daphne socket's unsent bytes while a replay waits


class Connection:
    """One physical socket as the hub sees it: identity plus a non-blocking, bounded send."""

    __slots__ = (
        "socket_id", "app", "_asgi_send", "_direct", "_server", "_write", "_queue", "_queued_bytes", "_drainer",
        "closed", "max_pending_bytes", "close_deadline",
        "channels", "user_id", "user_data", "tabs", "last_seen", "pinged", "origin",
        "_client_event_times",
    )

    def __init__(self, socket_id: str, app, asgi_send: AsgiSend, max_pending_bytes: int,
                 close_deadline: float = 5.0):
        self.socket_id = socket_id
        self.app = app
        self._asgi_send = asgi_send
        # The server's protocol object and how to write to it directly, when we know it.
        self._direct, self._server = _direct_writer(asgi_send)
        self._write = self._server.write if self._server is not None else None
        self._queue: deque[dict[str, Any]] | None = None  # the ASGI path's backlog
        self._queued_bytes = 0
        self._drainer: asyncio.Task | None = None
        self.closed = False
        self.max_pending_bytes = max_pending_bytes
        self.close_deadline = close_deadline
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
        """Write one text frame now, or leave it buffered in order; never blocks the caller.

        ``wire`` is ``text_frame(text)`` when the caller framed it once for many sockets.
        """
        if self.closed:
            return
        direct = self._direct
        if direct is None:
            self._enqueue({"type": "websocket.send", "text": text}, len(text))
            return
        outcome = self._write(direct, text_frame(text) if wire is None else wire, self.max_pending_bytes)
        if outcome is _OVERFLOW:
            self._overflowed()
        # _GONE: the peer or the server is already closing; the consumer hears of it from the server.

    def send_many(self, texts: list[str]) -> None:
        """Write several text frames in order (a replay), framed together and written in chunks of
        up to ``WRITE_CHUNK`` bytes: one transport write per chunk instead of one per frame. Each
        chunk meets the pending-bytes limit as one frame would, so a slow reader is closed the same."""
        direct = self._direct
        if direct is None:
            for text in texts:
                self.send(text)
            return
        for chunk in _chunks(texts):
            if self.closed:
                return
            outcome = self._write(direct, b"".join(map(text_frame, chunk)), self.max_pending_bytes)
            if outcome is _OVERFLOW:
                self._overflowed()
            if outcome is not _WRITTEN:
                return

    async def send_paced(self, texts: list[str]) -> None:
        """Write frames in order at the pace the peer reads them (a resume's replay, up to
        ``MAX_REPLAY`` messages): a chunk of ``WRITE_CHUNK`` bytes at a time, each once the socket
        has taken the previous ones. A healthy reader gets all of it however large; one that
        stops reading for ``close_deadline`` seconds is closed (4100) as live traffic would close it.
        Before, the whole replay went out at once and a healthy reader of a channel of large
        messages was closed as slow (a replay of 100 messages of 10 KB is the 1 MB limit)."""
        direct = self._direct
        if direct is None:  # the ASGI path: queued and bounded as any frame
            self.send_many(texts)
            return
        for chunk in _chunks(texts):
            if self.closed:
                return
            if not await self._server.writable(direct, self.close_deadline):
                if not self.closed:
                    self._overflowed()
                return
            self.send_many(chunk)

    def _overflowed(self) -> None:
        metrics.SLOW_READER_CLOSES.inc()
        if slow_closes.hit(f"app {self.app.id}", self.socket_id):  # a wave of them: one summary line
            log.info("closing slow socket %s: more than %d bytes pending", self.socket_id, self.max_pending_bytes,
                     extra={"socket_id": self.socket_id})  # not the publisher's (the context's)
        self.close(codes.OVER_CAPACITY, SLOW_READER_REASON)

    def close(self, code: int, reason: str = "") -> None:
        """Close with a Pusher close code, after what is already pending; abort if that stalls."""
        if self.closed:
            return
        self.closed = True
        direct = self._direct
        if direct is None:
            self._enqueue({"type": "websocket.close", "code": code, "reason": reason}, 0, closing=True)
            return
        if self._server.close(direct, code, reason):
            asyncio.get_running_loop().call_later(self.close_deadline, self._server.abort_unless_closed, direct)

    # --- the ASGI path (servers we cannot write to directly) ---

    def _enqueue(self, message: dict[str, Any], size: int, closing: bool = False) -> None:
        if self._queue is None:
            self._queue = deque()
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        self._queue.append(message)
        self._queued_bytes += size
        if not closing and self._queued_bytes > self.max_pending_bytes:
            metrics.SLOW_READER_CLOSES.inc()
            if slow_closes.hit(f"app {self.app.id}", self.socket_id):  # a wave of them: one summary line
                log.info("closing slow socket %s: more than %d bytes pending", self.socket_id, self.max_pending_bytes,
                         extra={"socket_id": self.socket_id})  # not the publisher's (the context's)
            self._queue.clear()  # nothing here reached the peer yet: a server we can't bound gets no more
            self._queued_bytes = 0
            self.closed = True
            self._queue.append({"type": "websocket.close", "code": codes.OVER_CAPACITY, "reason": SLOW_READER_REASON})

    async def _drain(self) -> None:
        queue = self._queue
        try:
            while queue:
                message = queue.popleft()
                self._queued_bytes -= len(message.get("text") or "")
                if message["type"] == "websocket.close":
                    async with asyncio.timeout(self.close_deadline):
                        await self._asgi_send(message)
                else:
                    await self._asgi_send(message)
        except Exception:  # noqa: BLE001 - the peer went away (or the close stalled); the server cleans up
            self.closed = True
        finally:
            self._queue, self._queued_bytes, self._drainer = None, 0, None


def _chunks(texts: list[str]):
    """``texts`` in consecutive slices of about ``WRITE_CHUNK`` bytes (the last may be smaller)."""
    start = size = 0
    for i, text in enumerate(texts):
        size += len(text)
        if size >= WRITE_CHUNK:
            yield texts[start:i + 1]
            start, size = i + 1, 0
    if start < len(texts):
        yield texts[start:]


def text_frame(text: str) -> bytes:
    """The RFC 6455 frame a server sends for ``text``: final, unmasked, no extensions."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


# Outcomes of a direct write (compared by identity).
_WRITTEN, _OVERFLOW, _GONE = "written", "overflow", "gone"
_OPEN = State.OPEN
_LINGER_ZERO = struct.pack("ii", 1, 0)


class _Uvicorn:
    """uvicorn's websockets-sansio protocol: its own checks and steps, minus the awaits."""

    @staticmethod
    def write(protocol, wire: bytes, limit: int) -> str:
        if protocol.close_sent or protocol.disconnected or protocol.conn.state is not _OPEN:
            return _GONE
        transport = protocol.transport
        # Below the transport's high-water mark ("writable") nothing is buffered worth counting.
        if not protocol.writable.is_set() and transport.get_write_buffer_size() + len(wire) > limit:
            return _OVERFLOW
        transport.write(wire)
        return _WRITTEN

    @staticmethod
    async def writable(protocol, timeout: float) -> bool:
        """Wait until the transport is below its high-water mark (uvicorn's own "writable");
        False if it stays above for ``timeout`` seconds. A lost connection counts as writable:
        the next write finds it gone."""
        if protocol.writable.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await protocol.writable.wait()
        except TimeoutError:
            return False
        return True

    @staticmethod
    def close(protocol, code: int, reason: str) -> bool:
        """What uvicorn's ``send`` does for ``websocket.close``, without first awaiting "writable"
        (a slow reader's socket is never writable: that wait is how a stalled peer held a task)."""
        transport = protocol.transport
        if protocol.close_sent or protocol.disconnected or transport.is_closing():
            return False
        protocol.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        protocol.conn.send_close(code, reason)
        transport.write(b"".join(protocol.conn.data_to_send()))
        protocol.close_sent = True
        if protocol.read_paused:  # read the peer's close reply
            protocol.read_paused = False
            transport.resume_reading()
        return True

    @staticmethod
    def abort_unless_closed(protocol) -> None:
        if not protocol.disconnected:
            _reset_on_close(protocol.transport.get_extra_info("socket"))
            protocol.transport.abort()


class _Autobahn:
    """daphne's autobahn protocol: ``sendMessage`` and ``sendClose`` for an uncompressed socket."""

    @staticmethod
    def write(protocol, wire: bytes, limit: int) -> str:
        if protocol.state != protocol.STATE_OPEN:
            return _GONE
        if _twisted_buffered(protocol.transport) + len(wire) > limit:
            return _OVERFLOW
        protocol.sendData(wire)
        return _WRITTEN

    @staticmethod
    async def writable(protocol, timeout: float) -> bool:
        """Wait until Twisted holds less than a chunk unsent; False after ``timeout`` seconds.
        (Twisted tells producers, not asyncio waiters: polled, only while a replay waits.)"""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while protocol.state == protocol.STATE_OPEN and _twisted_buffered(protocol.transport) >= WRITE_CHUNK:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(TWISTED_POLL)
        return True

    @staticmethod
    def close(protocol, code: int, reason: str) -> bool:
        if protocol.state != protocol.STATE_OPEN:
            return False
        protocol.sendClose(code, reason)
        # Tell the consumer now, as uvicorn's close does: daphne would only once the socket is gone.
        protocol.application_queue.put_nowait({"type": "websocket.disconnect", "code": code})
        return True

    @staticmethod
    def abort_unless_closed(protocol) -> None:
        if protocol.state != protocol.STATE_CLOSED:
            _reset_on_close(getattr(protocol.transport, "socket", None))
            protocol.transport.abortConnection()


def _reset_on_close(sock) -> None:
    """Make closing ``sock`` send a TCP reset: the kernel drops what the peer never read at once
    instead of keeping it (up to the send buffer, ~4 MB) in an orphaned socket the peer stalls."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    except (AttributeError, OSError):  # no socket (not TCP) or already gone: a plain abort is enough
        pass


def _twisted_buffered(transport) -> int:
    """Bytes a Twisted TCP transport holds unsent (``FileDescriptor``'s buffer and its pending list)."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen  # noqa: SLF001


_UVICORN = {("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol"),
            ("service.realtime.ws_protocol", "LeanWebSocketProtocol")}  # serve's trimmed subclass
_DAPHNE = ("daphne.ws_protocol", "WebSocketProtocol")


def _direct_writer(asgi_send) -> tuple[Any, Any]:
    """(protocol, server adapter) for a socket we can write to directly, else (None, None).

    uvicorn hands the app its protocol's bound ``send``; daphne a ``partial(server.handle_reply,
    protocol)``. Matched by exact class so a subclass or another server falls back to ASGI; a
    socket that negotiated an extension (compression) changes its bytes, so it does too.
    """
    protocol = getattr(asgi_send, "__self__", None)
    if protocol is not None and _class_of(protocol) in _UVICORN:
        conn = getattr(protocol, "conn", None)
        return (protocol, _Uvicorn) if conn is None or not conn.extensions else (None, None)
    protocol = asgi_send.args[0] if isinstance(asgi_send, functools.partial) and asgi_send.args else None
    if protocol is not None and _class_of(protocol) == _DAPHNE:
        compressed = getattr(protocol, "_perMessageCompress", None) is not None
        return (None, None) if compressed else (protocol, _Autobahn)
    return None, None


def _class_of(obj) -> tuple[str, str]:
    return type(obj).__module__, type(obj).__qualname__
