"""A WebSocket client at the frame level, for frames no library would send (fuzz tests).

Blocking sockets with timeouts: the fuzz tests drive one socket at a time and must see
exactly what the server wrote (frames, close codes, a TCP close), nothing interpreted.
"""

import base64
import itertools
import os
import socket
import struct
import time

_sources = itertools.cycle(f"127.0.0.{n}" for n in range(2, 255))

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Closed(Exception):
    """The server closed the TCP connection (EOF or reset) before the expected frame arrived."""


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True,
                 mask_key: bytes | None = None, length: int | None = None) -> bytes:
    """One RFC 6455 frame; every field can be wrong on purpose (``length`` overrides the real one)."""
    first = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0xF)
    size = len(payload) if length is None else length
    if size < 126:
        header = struct.pack("!BB", first, (0x80 if mask else 0) | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, size)
    else:
        header = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, size)
    if not mask:
        return header + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 else _xor(payload, key)
    return header + key + masked


def _xor(payload: bytes, key: bytes) -> bytes:
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


class WireSocket:
    """A handshaken WebSocket as a plain TCP socket: send any bytes, read frames as they come."""

    def __init__(self, sock: socket.socket, buffered: bytes = b""):
        self.sock = sock
        self.buffer = bytearray(buffered)

    @classmethod
    def connect(cls, port: int, path: str, *, headers: dict | None = None, timeout: float = 5,
                request: bytes | None = None) -> "WireSocket":
        """Connect from the next of 253 loopback addresses (the fuzz tests' sockets are many clients
        to the per-IP admission limits, as they would be on the internet), handshake, return it.
        ``request`` replaces the whole HTTP request."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(next(_sources), 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stalls
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        sock.sendall(request if request is not None else ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = bytearray()
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in response:
            if time.monotonic() > deadline:
                raise TimeoutError("no handshake response")
            chunk = sock.recv(4096)
            if not chunk:
                raise Closed(f"closed during the handshake: {bytes(response)!r}")
            response += chunk
        head, _, rest = bytes(response).partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise HandshakeRefused(status.decode("latin-1"), head.decode("latin-1"), _body(sock, head, rest, deadline))
        return cls(sock, rest)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, opcode: int, payload: bytes | str, **frame) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        self.sock.sendall(encode_frame(opcode, payload, **frame))

    def send_text(self, text: str) -> None:
        self.send(OP_TEXT, text.encode("utf-8", "surrogatepass"))

    def _read(self, n: int, deadline: float) -> bytes:
        while len(self.buffer) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"waited for {n} bytes, have {len(self.buffer)}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError(f"waited for {n} bytes, have {len(self.buffer)}") from None
            except ConnectionResetError:
                raise Closed("connection reset") from None
            if not chunk:
                raise Closed("EOF")
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def recv_frame(self, timeout: float = 5) -> tuple[int, bytes, bool]:
        """(opcode, payload, fin) of the next frame the server sent."""
        deadline = time.monotonic() + timeout
        first, second = self._read(2, deadline)
        if second & 0x80:
            raise AssertionError("the server sent a masked frame")
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read(2, deadline))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read(8, deadline))[0]
        return first & 0x0F, self._read(size, deadline), bool(first & 0x80)

    def wait_eof(self, timeout: float = 5) -> bytes:
        """Read until the server closes the TCP connection; returns what came before the EOF."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._read(len(self.buffer) + 1, deadline)
            except Closed:
                rest = bytes(self.buffer)
                self.buffer.clear()
                return rest

    def answer_close(self, payload: bytes, timeout: float = 5) -> bytes:
        """Reply to the server's close frame as a client must, then wait for the TCP close
        (the server waits up to 10 s for this reply before it closes anyway)."""
        try:
            self.send(OP_CLOSE, payload[:2])
        except OSError:
            pass  # already closed: fine
        return self.wait_eof(timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _body(sock: socket.socket, head: bytes, rest: bytes, deadline: float) -> bytes:
    """The body of a plain HTTP answer (Content-Length, chunked, or up to EOF); closes the socket."""
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    body = bytearray(rest)
    length = int(headers[b"content-length"]) if headers.get(b"content-length", b"").isdigit() else None
    chunked = headers.get(b"transfer-encoding", b"").lower() == b"chunked"
    try:
        while len(body) < 65536 and time.monotonic() < deadline:
            if length is not None and len(body) >= length:
                break
            if chunked and body.endswith(b"0\r\n\r\n"):
                break
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except OSError:
        pass
    finally:
        sock.close()
    return bytes(body[:length] if length is not None else body)


class HandshakeRefused(Exception):
    """The server answered the upgrade with a plain HTTP response (then closed)."""

    def __init__(self, status: str, head: str, body: bytes = b""):
        super().__init__(status)
        self.status, self.head, self.body = status, head, body

    @property
    def code(self) -> int:
        return int(self.status.split()[1])


def close_payload(data: bytes) -> tuple[int | None, str]:
    if len(data) < 2:
        return None, ""
    return struct.unpack("!H", data[:2])[0], data[2:].decode("utf-8", "replace")
