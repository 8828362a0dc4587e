"""The neighbour's receiver (``scenarios.neighbour_latency``): a few Pusher sockets in a process of
their own, timing every delivery twice.

- **arrival**: when the frame reached this socket, from the kernel (``SO_TIMESTAMPNS``). On
  loopback the kernel delivers a segment inside the sender's ``send()``, so this is when the
  server wrote the frame: publish->arrival is the server's part (plus the publisher's write),
  whatever happens to this process afterwards.
- **read**: when this process read it. read - arrival is the receiving side: how long the
  receiver waited for a core.

The Node generator cannot do the first (Node has no ``SO_TIMESTAMPNS``), and its processes that
hold the big tenant's sockets share a core with whatever receives the neighbour's frames, so a
Node receiver's p99 mixes the server's delay with the generator's. The scenario also gives this
process nice -20 where that is permitted, so its reads do not queue behind the big tenant's
receivers either.

JSON lines on stdin/stdout, the commands of ``bench/js/subscriber.js`` (connect, reset, expect,
stats, exit); ``stats`` has ``latencies`` (read - sent, ms) and ``arrivals`` (arrival - sent, ms).
Built on websockets' sans-I/O client, so the socket I/O (``recvmsg``) is ours.
"""

import json
import os
import select
import socket
import struct
import sys
import time

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
MARK = b"@t="


def now_ms() -> float:
    return time.time() * 1000


def out(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Socket:
    """One Pusher socket: handshake and subscribe blocking, then non-blocking reads with timestamps."""

    def __init__(self, url: str, channel: str, timeout: float):
        uri = parse_uri(url)
        self.sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws = ClientProtocol(uri, max_size=None)
        self.ws.send_request(self.ws.connect())
        self.flush()
        subscribed = False
        while not subscribed:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            self.ws.receive_data(data)
            for event in self.ws.events_received():
                if isinstance(event, Response):
                    if self.ws.handshake_exc is not None:
                        raise self.ws.handshake_exc
                    continue
                frame = json.loads(event.data)
                if frame.get("event") == "pusher:connection_established":
                    self.send({"event": "pusher:subscribe", "data": {"channel": channel}})
                elif frame.get("event") == "pusher_internal:subscription_succeeded":
                    subscribed = True
            self.flush()
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)

    def send(self, message: dict) -> None:
        self.ws.send_text(json.dumps(message).encode())

    def flush(self) -> None:
        for data in self.ws.data_to_send():
            if data:
                self.sock.sendall(data)

    def read(self) -> list[tuple[float, float, bytes]]:
        """(arrival, read, payload) of the frames in what the socket holds now."""
        try:
            data, ancillary, _, _ = self.sock.recvmsg(65536, 64)
        except BlockingIOError:
            return []
        read = now_ms()
        if not data:
            raise ConnectionError("closed")
        arrival = read
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", value[:16])
                arrival = seconds * 1000 + nanoseconds / 1e6
        self.ws.receive_data(data)
        frames = []
        for event in self.ws.events_received():
            if getattr(event, "opcode", None) == Opcode.TEXT:
                if b'"pusher:ping"' in event.data:
                    self.send({"event": "pusher:pong", "data": {}})
                else:
                    frames.append((arrival, read, event.data))
        self.flush()  # pongs (protocol and Pusher level)
        return frames

    def close(self) -> None:
        self.sock.close()


class Receiver:
    def __init__(self):
        self.poll = select.epoll()
        self.poll.register(0, select.EPOLLIN)
        self.sockets: dict[int, Socket] = {}
        self.received, self.last_at = 0, 0.0
        self.latencies: list[float] | None = None
        self.arrivals: list[float] = []
        self.expect: tuple[int, float] | None = None  # (target, deadline)
        self.pending = b""

    def connect(self, cmd: dict) -> None:
        t_start = now_ms()
        ok = failed = 0
        t_end = t_start
        for _ in range(cmd["count"]):
            try:
                sock = Socket(cmd["url"], cmd["channel"], cmd.get("timeout_ms", 60_000) / 1000)
            except (OSError, ValueError) as exc:
                failed += 1
                print(f"neighbour receiver: connect failed: {exc!r}", file=sys.stderr)
                continue
            self.sockets[sock.sock.fileno()] = sock
            self.poll.register(sock.sock.fileno(), select.EPOLLIN)
            ok += 1
            t_end = now_ms()
        out({"type": "connected", "ok": ok, "failed": failed, "t_start": t_start, "t_end": t_end})

    def on_frames(self, frames) -> None:
        for arrival, read, payload in frames:
            self.received += 1
            self.last_at = read
            if self.latencies is not None and (i := payload.find(MARK)) >= 0:
                sent = float(payload[i + 3:payload.index(b";", i)])
                self.latencies.append(read - sent)
                self.arrivals.append(arrival - sent)
        if self.expect is not None and self.received >= self.expect[0]:
            self.finish_expect(True)

    def finish_expect(self, complete: bool) -> None:
        self.expect = None
        out({"type": "done", "complete": complete, "received": self.received, "t_last": self.last_at})

    def command(self, cmd: dict) -> bool:
        op = cmd["op"]
        if op == "connect":
            self.connect(cmd)
        elif op == "reset":
            self.received, self.last_at = 0, 0.0
            self.latencies = [] if cmd.get("latency") else None
            self.arrivals = []
            out({"type": "reset"})
        elif op == "expect":
            target = cmd["per_socket"] * len(self.sockets)
            if self.received >= target:
                out({"type": "done", "complete": True, "received": self.received, "t_last": self.last_at})
            else:
                self.expect = (target, time.monotonic() + cmd["timeout_ms"] / 1000)
        elif op == "stats":
            out({"type": "stats", "received": self.received, "t_last": self.last_at, "open": len(self.sockets),
                 "latencies": self.latencies or [], "arrivals": self.arrivals})
        elif op in ("close", "exit"):
            for sock in self.sockets.values():
                self.poll.unregister(sock.sock.fileno())
                sock.close()
            self.sockets = {}
            if op == "exit":
                return False
            out({"type": "closed"})
        return True

    def run(self) -> None:
        while True:
            timeout = -1 if self.expect is None else max(0.0, self.expect[1] - time.monotonic())
            for fd, _ in self.poll.poll(timeout):
                if fd == 0:
                    chunk = os.read(0, 65536)
                    if not chunk:
                        return
                    self.pending += chunk
                    while b"\n" in self.pending:
                        line, self.pending = self.pending.split(b"\n", 1)
                        if line.strip() and not self.command(json.loads(line)):
                            return
                elif (sock := self.sockets.get(fd)) is not None:
                    try:
                        self.on_frames(sock.read())
                    except ConnectionError:
                        self.poll.unregister(fd)
                        sock.close()
                        del self.sockets[fd]
            if self.expect is not None and time.monotonic() >= self.expect[1]:
                self.finish_expect(False)


if __name__ == "__main__":
    Receiver().run()
