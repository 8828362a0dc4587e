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
"""

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()
        self.writable = _Writable()

    async def send(self, message):
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
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
