"""The fan-out fast path writes exactly the bytes the WebSocket library would have written."""

import asyncio
import functools

import pytest
from websockets.frames import Frame, Opcode

from service.realtime.connection import SLOW_READER_REASON, Connection, text_frame


@pytest.mark.parametrize("text", ["", "x", "x" * 125, "x" * 126, "é" * 100, "x" * 65535, "x" * 65536, "€" * 30000])
def test_text_frame_is_what_websockets_serializes_for_a_server(text):
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert text_frame(text) == expected


class _App:
    id = 1


async def test_an_unknown_server_goes_through_the_asgi_send():
    sent = []

    async def asgi_send(message):
        sent.append(message)

    conn = Connection("1.1", _App(), asgi_send, max_pending_bytes=1024)
    conn.send("hello", text_frame("hello"))
    conn.send("world")
    await conn._drainer  # one task awaits each ASGI send in order
    assert sent == [{"type": "websocket.send", "text": "hello"}, {"type": "websocket.send", "text": "world"}]


async def test_the_asgi_path_is_bounded_in_bytes_too():
    sent = []
    stalled = asyncio.Event()

    async def asgi_send(message):  # a peer that stops reading after the first frame
        sent.append(message)
        if len(sent) > 1:
            await stalled.wait()

    conn = Connection("1.1", _App(), asgi_send, max_pending_bytes=1000, close_deadline=0.1)
    for _ in range(20):
        conn.send("x" * 100)
    assert conn.closed
    stalled.set()
    await conn._drainer
    assert sent[-1] == {"type": "websocket.close", "code": 4100, "reason": SLOW_READER_REASON}
    assert len(sent) <= 3  # the frames that were queued past the bound were never sent


def test_uvicorn_and_daphne_protocols_are_recognised():
    from daphne.ws_protocol import WebSocketProtocol
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    uvicorn_protocol = object.__new__(WebSocketsSansIOProtocol)
    assert Connection("1.1", _App(), uvicorn_protocol.send, 10)._direct is uvicorn_protocol
    daphne_protocol = object.__new__(WebSocketProtocol)
    daphne_send = functools.partial(lambda protocol, message: None, daphne_protocol)
    assert Connection("1.1", _App(), daphne_send, 10)._direct is daphne_protocol
