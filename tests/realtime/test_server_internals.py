"""Issue 9: the server internals ws_protocol.py/connection.py rely on are checked at start, and the
replacements take effect in a running server (uvicorn in this process, so its objects can be read)."""

import asyncio

import pytest
import uvicorn
import websockets
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from django.core.management import CommandError, call_command
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from service.realtime import ws_protocol
from service.realtime.management.commands import serve as serve_command
from service.realtime.connection import _direct_writer
from service.realtime.internals import ServerInternalsError, check_server_internals
from service.realtime.server import uvicorn_config
from tests.support.processes import free_port


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_the_installed_packages_pass_the_check(server):
    check_server_internals(server)


def test_a_missing_method_fails_the_check_naming_package_class_and_attribute(monkeypatch):
    monkeypatch.delattr(HttpToolsProtocol, "handle_websocket_upgrade")
    with pytest.raises(ServerInternalsError) as error:
        check_server_internals("uvicorn")
    message = str(error.value)
    assert f"uvicorn {uvicorn.__version__}" in message
    assert "HttpToolsProtocol has no attribute 'handle_websocket_upgrade'" in message
    assert "requirements.txt" in message


def test_a_renamed_instance_attribute_fails_the_check(monkeypatch):
    """uvicorn keeping its queue under another name would leave ws_protocol's _Inbox unused."""
    original = WebSocketsSansIOProtocol.__init__

    def renamed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.inbox = self.__dict__.pop("queue")

    monkeypatch.setattr(WebSocketsSansIOProtocol, "__init__", renamed)
    with pytest.raises(ServerInternalsError, match=r"a WebSocketsSansIOProtocol has no attribute 'queue'"):
        check_server_internals("uvicorn")


def test_the_in_memory_handshake_notices_a_deadline_that_is_not_cancelled(monkeypatch):
    monkeypatch.setattr(ws_protocol.LeanWebSocketProtocol, "_cancel_deadline", lambda self: None)
    with pytest.raises(ServerInternalsError, match="accepting did not cancel the handshake deadline"):
        check_server_internals("uvicorn")


def test_daphnes_autobahn_internals_are_checked(monkeypatch):
    monkeypatch.delattr(AutobahnProtocol, "sendData")
    with pytest.raises(ServerInternalsError, match=r"autobahn .*has no attribute 'sendData'.*connection\.py"):
        check_server_internals("daphne")
    check_server_internals("uvicorn")  # uvicorn does not need it


def test_serve_refuses_to_start_when_the_check_fails(monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("serve started despite the failed check")

    monkeypatch.setattr(serve_command, "run_uvicorn", started)
    monkeypatch.delattr(HttpToolsProtocol, "on_message_complete")
    with pytest.raises(CommandError, match="on_message_complete"):
        call_command("serve", "--port", str(free_port()))


# --- in a running server ------------------------------------------------------------------------

class InProcessServer:
    """``serve``'s uvicorn configuration, run in this process around a small app."""

    def __init__(self, app, handshake_timeout: float):
        self.port = free_port()
        config = uvicorn_config("127.0.0.1", self.port)
        config.app = app  # everything else (protocol classes, limits) as serve has it
        config.lifespan = "off"
        config.handshake_timeout = handshake_timeout
        self.config = config
        self.server = uvicorn.Server(config)

    async def __aenter__(self):
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc):
        self.server.should_exit = True
        await self.task


async def test_a_connected_socket_runs_on_the_replacements_and_an_unaccepted_upgrade_is_closed():
    accepted = asyncio.Event()

    async def app(scope, receive, send):
        assert scope["type"] == "websocket"
        await receive()
        if scope["path"] == "/never":  # upgraded, never accepted: waits for the disconnect
            assert (await receive())["type"] == "websocket.disconnect"
            return
        await send({"type": "websocket.accept"})
        accepted.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with InProcessServer(app, handshake_timeout=1) as running:
        assert running.config.http_protocol_class is ws_protocol.DeadlineHttpToolsProtocol
        async with websockets.connect(f"ws://127.0.0.1:{running.port}/ok") as client:
            await accepted.wait()
            (protocol,) = [p for p in running.server.server_state.connections
                           if isinstance(p, WebSocketsSansIOProtocol)]
            assert type(protocol) is ws_protocol.LeanWebSocketProtocol
            assert isinstance(protocol.queue, ws_protocol._Inbox)
            assert isinstance(protocol.writable, ws_protocol._Writable)
            assert protocol.handshake_deadline is None  # cancelled by the accept
            assert protocol.request is None and protocol.response is None
            # connection.py's direct path recognises it
            assert _direct_writer(protocol.send)[0] is protocol
            await asyncio.sleep(1.5)  # past the deadline: an accepted socket is left alone
            await client.ping()

        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(b"GET /never HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        start = loop.time()
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, with no 101
        except ConnectionResetError:
            pass
        assert 0.8 < loop.time() - start < 3
        writer.close()
