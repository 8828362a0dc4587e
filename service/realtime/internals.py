"""Fail at start, clearly, if the server internals Tabcast replaces or writes through changed.

``ws_protocol.py`` subclasses uvicorn's httptools and websockets-sansio protocols and swaps the
objects they keep (``queue``, ``writable``), and ``connection.py`` writes fan-out frames straight
to the server's protocol object (uvicorn: ``conn.state``, ``writable``, ``close_sent``,
``disconnected``, ``transport``, ``conn.extensions``...; daphne: autobahn's ``state``,
``STATE_OPEN``, ``_perMessageCompress``, ``sendData``...). None of that is public API: a new
uvicorn, websockets, autobahn or daphne could rename any of it, and the symptom would be
subtle (an unused replacement, a fast path silently off, an AttributeError on the first
fan-out). ``requirements.txt`` pins those packages exactly; :func:`check_server_internals`,
run by ``manage.py serve`` before it listens, checks that what the code relies on is there and
names the package, the object and the attribute when it is not.

For uvicorn it also runs one WebSocket handshake in memory through the classes ``serve`` uses
(no socket): the upgrade must hand the handshake deadline to ``LeanWebSocketProtocol``, whose
``_Inbox``/``_Writable`` must be in place, and the app's accept must cancel the deadline and
drop the handshake objects.
"""

import asyncio
import inspect
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version


class ServerInternalsError(RuntimeError):
    """The installed server packages lack something Tabcast's protocol code relies on."""


def check_server_internals(server: str = "uvicorn") -> None:
    """Raise :class:`ServerInternalsError` listing every missing internal for ``server``."""
    problems: list[str] = []
    _check_common(problems)
    if server == "uvicorn":
        _check_uvicorn(problems)
    elif server == "daphne":
        _check_daphne(problems)
    else:
        raise ValueError(f"unknown server {server!r}")
    if problems:
        raise ServerInternalsError(
            "The installed server packages are not the ones service/realtime/ws_protocol.py and "
            "connection.py were written for (requirements.txt pins them exactly; install those "
            "versions or adapt the code):\n  - " + "\n  - ".join(problems))


# --- helpers ---------------------------------------------------------------------------------

def _package(name: str) -> str:
    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return f"{name} (not installed)"


def _import(problems, package: str, module: str, name: str | None = None):
    try:
        mod = import_module(module)
    except ImportError as exc:
        problems.append(f"{_package(package)}: cannot import {module} ({exc})")
        return None
    if name is None:
        return mod
    obj = getattr(mod, name, None)
    if obj is None:
        problems.append(f"{_package(package)}: {module} has no {name}")
    return obj


def _need(problems, package: str, obj, attrs, what: str, user: str) -> None:
    """Each of ``attrs`` must be an attribute of ``obj`` (a class or an instance)."""
    if obj is None:
        return
    for attr in attrs:
        if not hasattr(obj, attr):
            problems.append(f"{_package(package)}: {what} has no attribute {attr!r} (needed by {user})")


def _source_mentions(problems, package: str, func, needles, what: str, user: str) -> None:
    """For attributes set only later in an object's life (no instance to look at here)."""
    if func is None:
        return
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        problems.append(f"{_package(package)}: cannot read the source of {what} to check it")
        return
    for needle in needles:
        if needle not in source:
            problems.append(f"{_package(package)}: {what} no longer uses {needle!r} (needed by {user})")


# --- checks ----------------------------------------------------------------------------------

def _check_common(problems) -> None:
    state = _import(problems, "websockets", "websockets.protocol", "State")
    _need(problems, "websockets", state, ["OPEN"], "websockets.protocol.State", "connection.py")


def _check_uvicorn(problems) -> None:
    user_ws = "service/realtime/ws_protocol.py"
    http = _import(problems, "uvicorn", "uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol")
    _need(problems, "uvicorn", http,
          ["connection_made", "connection_lost", "data_received", "on_message_complete",
           "handle_websocket_upgrade", "_should_upgrade"],
          "uvicorn's HttpToolsProtocol", user_ws + " (DeadlineHttpToolsProtocol)")
    base = _import(problems, "uvicorn", "uvicorn.protocols.websockets.websockets_sansio_impl",
                   "WebSocketsSansIOProtocol")
    _need(problems, "uvicorn", base, ["send", "connection_lost", "handle_connect"],
          "uvicorn's WebSocketsSansIOProtocol", user_ws)
    _source_mentions(problems, "uvicorn", getattr(base, "handle_connect", None),
                     ["self.request", "self.response"], "WebSocketsSansIOProtocol.handle_connect",
                     user_ws + " (drops the handshake objects)")
    _import(problems, "uvicorn", "uvicorn.server", "ServerState")
    _import(problems, "httptools", "httptools", "HttpRequestParser")
    if problems:
        return  # the rest would only fail in less readable ways
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_uvicorn_handshake(problems))
    except Exception as exc:  # noqa: BLE001 - any failure here is what this check reports
        problems.append(f"{_package('uvicorn')}: an in-memory WebSocket handshake through "
                        f"DeadlineHttpToolsProtocol/LeanWebSocketProtocol failed: {exc!r}")
    finally:
        loop.close()


async def _uvicorn_handshake(problems) -> None:
    import uvicorn
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from uvicorn.server import ServerState

    from . import ws_protocol

    user_ws, user_conn = "service/realtime/ws_protocol.py", "service/realtime/connection.py"
    accepted = asyncio.get_running_loop().create_future()

    async def app(scope, receive, send):
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        accepted.set_result(scope)

    config = uvicorn.Config(app, ws=ws_protocol.LeanWebSocketProtocol, ws_per_message_deflate=False,
                            lifespan="off", log_level="warning", proxy_headers=False,
                            log_config=None)  # a Config with uvicorn's log config would replace settings.LOGGING's
    config.load()
    config.handshake_timeout = 60

    # What uvicorn builds itself; its attributes are what ws_protocol.py replaces and connection.py reads.
    base = WebSocketsSansIOProtocol(config=config, server_state=ServerState(), app_state={})
    _need(problems, "uvicorn", base,
          ["queue", "writable", "handshake_complete", "close_sent", "disconnected", "transport", "conn",
           "read_paused"], "a WebSocketsSansIOProtocol", f"{user_ws} and {user_conn}")
    _need(problems, "uvicorn", getattr(base, "queue", None), ["put_nowait", "get", "empty"],
          "WebSocketsSansIOProtocol.queue", f"{user_ws} (_Inbox replaces it)")
    _need(problems, "uvicorn", getattr(base, "writable", None), ["set", "clear", "is_set", "wait"],
          "WebSocketsSansIOProtocol.writable", f"{user_ws} (_Writable replaces it)")
    _need(problems, "websockets", getattr(base, "conn", None),
          ["state", "extensions", "send_close", "data_to_send", "accept", "send_response"],
          "websockets' ServerProtocol (protocol.conn)", user_conn)
    if problems:
        return

    transport = _MemoryTransport()
    http = ws_protocol.DeadlineHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    http.connection_made(transport)
    http.data_received(b"GET /selftest HTTP/1.1\r\nHost: selftest\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       b"Sec-WebSocket-Version: 13\r\n\r\n")
    ws = transport.protocol
    if not isinstance(ws, ws_protocol.LeanWebSocketProtocol):
        problems.append(f"{_package('uvicorn')}: the upgrade did not switch the transport to "
                        f"LeanWebSocketProtocol (got {type(ws).__name__})")
        return
    if not isinstance(ws.queue, ws_protocol._Inbox) or not isinstance(ws.writable, ws_protocol._Writable):  # noqa: SLF001
        problems.append(f"{_package('uvicorn')}: LeanWebSocketProtocol's queue/writable replacements "
                        "were overwritten")
    deadline = ws.handshake_deadline
    if deadline is None:
        problems.append(f"{_package('uvicorn')}: the upgrade did not hand the handshake deadline to "
                        "LeanWebSocketProtocol")
    await asyncio.wait_for(accepted, 5)
    for _ in range(3):
        await asyncio.sleep(0)
    if not transport.written.startswith(b"HTTP/1.1 101"):
        problems.append(f"{_package('uvicorn')}: the in-memory handshake did not answer 101 "
                        f"(wrote {bytes(transport.written[:40])!r})")
    if deadline is not None and (ws.handshake_deadline is not None or not deadline.cancelled()):
        problems.append(f"{_package('uvicorn')}: accepting did not cancel the handshake deadline")
    if getattr(ws, "request", None) is not None or getattr(ws, "response", None) is not None:
        problems.append(f"{_package('uvicorn')}: LeanWebSocketProtocol kept the handshake "
                        "request/response after accepting")
    ws.connection_lost(None)


class _MemoryTransport(asyncio.Transport):
    """The transport calls uvicorn's protocols make during a handshake, kept in memory."""

    def __init__(self):
        super().__init__()
        self.protocol = None
        self.written = bytearray()
        self.closing = False

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def set_protocol(self, protocol):
        self.protocol = protocol

    def get_protocol(self):
        return self.protocol

    def write(self, data):
        self.written += data

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    def abort(self):
        self.closing = True

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0


def _check_daphne(problems) -> None:
    user_conn, user_server = "service/realtime/connection.py", "service/realtime/server.py"
    ws = _import(problems, "daphne", "daphne.ws_protocol", "WebSocketProtocol")
    _need(problems, "autobahn", ws, ["STATE_OPEN", "STATE_CLOSED", "sendData", "sendClose"],
          "daphne's WebSocketProtocol (autobahn)", user_conn)
    autobahn = _import(problems, "autobahn", "autobahn.websocket.protocol", "WebSocketProtocol")
    _source_mentions(problems, "autobahn", getattr(autobahn, "_connectionMade", None),
                     ["self._perMessageCompress", "self.state"], "autobahn's WebSocketProtocol._connectionMade",
                     user_conn)
    _source_mentions(problems, "daphne", getattr(ws, "onClose", None), ["self.application_queue.put_nowait"],
                     "daphne's WebSocketProtocol.onClose", user_conn + " (tells the consumer at close)")
    server = _import(problems, "daphne", "daphne.server", "Server")
    _need(problems, "daphne", server, ["handle_reply"], "daphne.server.Server", user_conn)
    _source_mentions(problems, "daphne", getattr(server, "create_application", None),
                     ["partial(self.handle_reply, protocol)"], "daphne.server.Server.create_application",
                     user_conn + " (finds the protocol in the partial)")
    _need(problems, "daphne", _import(problems, "daphne", "daphne.server"), ["HTTPFactory"],
          "daphne.server", user_server + " (HTTP idle timeout)")
    descriptor = _import(problems, "Twisted", "twisted.internet.abstract", "FileDescriptor")
    _need(problems, "Twisted", descriptor, ["dataBuffer", "offset"],
          "twisted.internet.abstract.FileDescriptor", user_conn + " (bytes a socket holds unsent)")
    _source_mentions(problems, "Twisted", getattr(descriptor, "__init__", None), ["self._tempDataLen"],
                     "twisted.internet.abstract.FileDescriptor.__init__", user_conn + " (bytes a socket holds unsent)")
    cli = _import(problems, "daphne", "daphne.cli", "CommandLineInterface")
    if cli is not None:
        options = getattr(getattr(cli(), "parser", None), "_option_string_actions", {})
        for option in ("-e", "--verbosity", "--websocket_connect_timeout"):
            if option not in options:
                problems.append(f"{_package('daphne')}: daphne's command line has no {option} (used by {user_server})")

