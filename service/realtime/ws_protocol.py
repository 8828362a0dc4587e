"""uvicorn's websockets-sansio protocol, trimmed for a server that holds many idle sockets.

A Pusher socket is idle almost all its life, so what it costs is the objects it keeps.
tracemalloc on 3,000 subscribed sockets (bench/RESULTS.md, "Memory per idle socket") showed
uvicorn's protocol keeping, per socket and for the socket's whole life:

- an ``asyncio.Queue`` for received messages: four empty deques of 760 B each (3 KB);
- an ``asyncio.Event`` for "transport writable": one more deque (760 B);
- the handshake's parsed request and the response it sent, with their header maps (~2.5 KB).

(The ASGI scope's copy of the request headers is released by the consumer: ``consumer.py``.)

This subclass keeps uvicorn's behaviour (it only overrides those three things) and replaces the
queue and the event with single-reader equivalents that allocate a future only while someone
waits, and drops the handshake objects once the handshake is answered. Selected by
``serve`` (``service/realtime/server.py``); ``connection.py`` writes fan-out frames straight to
its transport exactly as for the class it extends.

Two client errors uvicorn mishandles are answered here: an upgrade request websockets cannot
parse (an 8 KB+ header line, a POST) gets its 4xx at once instead of silence until the deadline,
and a text frame that is not UTF-8 (closed with 1007) no longer logs a traceback each time.

It also carries the handshake deadline (see :class:`DeadlineHttpToolsProtocol` below) from the
HTTP upgrade to the ASGI accept, and cancels it there.

These classes rely on uvicorn's and websockets' internals (attribute names, what
``handle_connect`` sets): ``requirements.txt`` pins those packages exactly and
``internals.check_server_internals()`` fails ``serve`` at start if they changed.
"""

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from . import metrics
from .floods import handshake_timeouts

DEFAULT_HANDSHAKE_TIMEOUT = 5.0


class _QuietClientErrors(logging.LoggerAdapter):
    """uvicorn's "uvicorn.error" logger minus the traceback it logs for every text frame that is
    not UTF-8: the client is answered with close 1007, and one client could flood the log with it."""

    INVALID_UTF8 = "Invalid UTF-8 sequence received from client."

    @property
    def level(self) -> int:  # uvicorn reads logger.level
        return self.logger.level

    def log(self, level, msg, *args, **kwargs):
        if msg == self.INVALID_UTF8:
            return
        super().log(level, msg, *args, **kwargs)


_UVICORN_LOGGER = _QuietClientErrors(logging.getLogger("uvicorn.error"), {})


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.logger = _UVICORN_LOGGER
        self.queue = _Inbox()
        self.writable = _Writable()
        # The HTTP protocol's deadline, handed over at the upgrade; cancelled once the app answers.
        self.handshake_deadline: asyncio.TimerHandle | None = None

    def connection_lost(self, exc):
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_complete and self.conn.handshake_exc is not None:
            self._refuse_unparsable()

    def _refuse_unparsable(self) -> None:
        """Answer an upgrade request websockets could not parse (a header line over 8 KB, a POST).

        websockets prepares a 414/431 for an oversized line and nothing for the rest; uvicorn
        sends neither, so the peer would wait for the handshake deadline. Answer now, and close.
        """
        self._cancel_deadline()
        prepared = b"".join(self.conn.data_to_send())
        if not prepared.startswith(b"HTTP/"):
            body = b"Bad Request: not a valid WebSocket handshake\n"
            prepared = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        self.handshake_complete = self.close_sent = True  # nothing more to answer on this socket
        if not self.transport.is_closing():
            self.transport.write(prepared)
            self.transport.close()

    def _cancel_deadline(self) -> None:
        deadline = self.handshake_deadline
        if deadline is not None:
            deadline.cancel()
            self.handshake_deadline = None

    async def send(self, message):
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            # A refusal with an HTTP response (an unknown path's 404) is a finished handshake;
            # uvicorn 0.54 does not note it and logs "returned without completing handshake".
            self.handshake_complete = True
        if self.handshake_complete and getattr(self, "response", None) is not None:
            self._cancel_deadline()
            # Accepted or refused: neither the request nor the response is read again. The
            # headers are cleared too because websockets' parser generator keeps the request
            # in a local variable for the socket's life.
            self.request.headers.clear()
            self.request = self.response = None


class _Inbox:
    """The part of ``asyncio.Queue`` uvicorn uses (``put_nowait``, ``get``, ``empty``), for one reader."""

    __slots__ = ("_items", "_waiter")

    def __init__(self):
        self._items: list = []
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self):
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Writable:
    """``asyncio.Event`` (``set``, ``clear``, ``is_set``, ``wait``) that makes waiters only when waited on."""

    __slots__ = ("_set", "_waiters")

    def __init__(self):
        self._set = True
        self._waiters: list[asyncio.Future] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            self._waiters.remove(waiter)
            if not self._waiters:
                self._waiters = None


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for receiving a whole request.

    uvicorn arms its keep-alive timeout only *between* requests, so a peer that sends half a
    request (slowloris: a request line, then a header byte every few seconds, or never the
    blank line) holds its socket forever. Here a request must be complete within
    ``config.handshake_timeout`` seconds (``TABCAST_HANDSHAKE_TIMEOUT``, set by
    ``server.uvicorn_config``) of the connection opening, or of the first byte of a later
    request on a kept-alive connection; else the transport is aborted (no response is pending
    then). For a WebSocket upgrade the timer is handed to :class:`LeanWebSocketProtocol`, which
    cancels it when the app accepts or refuses: an upgraded socket whose ASGI accept never
    comes is covered by the same deadline.

    Cost: one timer per connection, not per request. A keep-alive connection's requests only
    note their start time; when the timer fires it checks the request in progress, re-arms for
    what is left of it, or lapses between requests until the next one starts.
    """

    _deadline: asyncio.TimerHandle | None = None
    _started: float | None = None  # loop time the request in progress began; None between requests
    _upgraded_to: "LeanWebSocketProtocol | None" = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._timeout = getattr(self.config, "handshake_timeout", DEFAULT_HANDSHAKE_TIMEOUT) or 0
        if self._timeout > 0:
            self._started = self.loop.time()
            self._deadline = self.loop.call_later(self._timeout, self._expired)

    def data_received(self, data: bytes) -> None:
        if self._started is None and self._timeout > 0:  # the first bytes of a later request
            self._started = self.loop.time()
            if self._deadline is None:
                self._deadline = self.loop.call_later(self._timeout, self._expired)
        super().data_received(data)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._started = None  # an upgrade stays "in progress" until the app answers

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        deadline = self._deadline
        if deadline is None:
            return
        protocol = self.transport.get_protocol()
        if isinstance(protocol, LeanWebSocketProtocol) and not protocol.handshake_complete:
            self._upgraded_to = protocol
            protocol.handshake_deadline = deadline
        else:  # a protocol that would never cancel it: no deadline rather than a wrong one
            deadline.cancel()
            self._deadline = None

    def connection_lost(self, exc) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _expired(self) -> None:
        self._deadline = None
        if self._started is None:
            return  # between requests (uvicorn's keep-alive timeout governs); re-armed by the next one
        left = self._started + self._timeout - self.loop.time()
        if left > 0.001:  # a later request, started after the timer was set
            self._deadline = self.loop.call_later(left, self._expired)
            if self._upgraded_to is not None:
                self._upgraded_to.handshake_deadline = self._deadline
            return
        if not self.transport.is_closing():
            metrics.handshake_failed("timeout")
            handshake_timeouts.hit((self.client or ("?",))[0])  # a slowloris wave: one line, then summaries
            self.transport.abort()
