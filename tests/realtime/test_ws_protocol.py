"""The trimmed uvicorn protocol's stand-ins for asyncio.Queue and asyncio.Event behave like them.

uvicorn's protocol relies on them for every received frame (the inbox) and for back-pressure
on a socket whose peer stops reading (writable); the end-to-end tests run on this protocol too.
The coroutines are stepped by hand so each test knows exactly when a reader is waiting.
"""

import asyncio

import pytest

from service.realtime.connection import Connection
from service.realtime.server import uvicorn_config
from service.realtime.ws_protocol import LeanWebSocketProtocol, _Inbox, _Writable


def suspended(coro):
    """Start ``coro``; it must suspend (on a future, which is returned with it)."""
    return coro, coro.send(None)


def finish(coro):
    with pytest.raises(StopIteration) as stop:
        coro.send(None)
    return stop.value.value


async def test_inbox_hands_over_messages_in_order_and_wakes_a_waiting_reader():
    inbox = _Inbox()
    reader, waiting_on = suspended(inbox.get())
    assert inbox.empty() and not waiting_on.done()
    inbox.put_nowait({"type": "websocket.connect"})
    inbox.put_nowait({"type": "websocket.receive", "text": "{}"})
    assert waiting_on.done()
    assert finish(reader) == {"type": "websocket.connect"}
    assert not inbox.empty()
    assert await inbox.get() == {"type": "websocket.receive", "text": "{}"}
    assert inbox.empty()


async def test_inbox_reader_cancelled_while_waiting_leaves_the_inbox_usable():
    inbox = _Inbox()
    reader, _ = suspended(inbox.get())
    with pytest.raises(asyncio.CancelledError):
        reader.throw(asyncio.CancelledError())
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1006})
    assert await inbox.get() == {"type": "websocket.disconnect", "code": 1006}


async def test_writable_releases_every_waiter_when_set_and_survives_a_cancelled_one():
    writable = _Writable()
    assert writable.is_set() and await writable.wait()
    writable.clear()
    (first, first_on), (second, second_on), (cancelled, _) = (suspended(writable.wait()) for _ in range(3))
    with pytest.raises(asyncio.CancelledError):
        cancelled.throw(asyncio.CancelledError())
    assert not first_on.done() and not second_on.done()
    writable.set()
    assert finish(first) is True and finish(second) is True
    assert writable.is_set()


def test_serve_uses_the_trimmed_protocol_and_fan_out_writes_to_it_directly():
    config = uvicorn_config("127.0.0.1", 0)
    config.load()
    assert config.ws_protocol_class is LeanWebSocketProtocol

    class App:
        id = 1

    protocol = object.__new__(LeanWebSocketProtocol)
    assert Connection("1.1", App(), protocol.send, 10)._direct is protocol
