"""Churn and abuse against one server in Redis mode, then proof that nothing leaked.

2,000 sockets arrive over ~20 s (100/s, from 253 loopback addresses so the per-IP admission
limits see many clients, as on the internet) and subscribe to public and presence channels
while events are published to them. They leave in every way a client can:

* a clean close (close frame, then FIN);
* an abrupt TCP reset (SO_LINGER 0) with subscriptions and presence held;
* a client that stops reading while its channels are busy, is frozen (SIGSTOP) and then
  killed (SIGKILL), as a laptop that sleeps and never comes back;
* half-sent handshakes: a request line and some headers, then silence (or nothing at all), and
  ones reset mid-request.

Afterwards, waiting on each condition with a deadline (never a fixed sleep), the server's open
file descriptors and Redis keys return to their baseline, its RSS to near its baseline, and
the HTTP API counts nothing: no channels, no presence members, no connections. A new client
is then served normally.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest
import redis as redis_client

from service.realtime.state.base import CONNECTION_HISTORY_SECONDS
from tests.scaleout.conftest import Cluster
from tests.support.processes import wait_until

pytestmark = pytest.mark.redis

TOTAL = 2_000  # sockets over the run
RATE = 100  # new sockets per second
SOURCES = [f"127.0.0.{n}" for n in range(2, 255)]
PUBLIC = [f"churn-pub-{n}" for n in range(20)]
PRESENCE = [f"presence-churn-{n}" for n in range(10)]
STUCK_SOCKETS = 40
FD_MARGINS = {"client sockets": 0, "other sockets (Redis pool, ...)": 64, "files (SQLite, ...)": 8}  # else 2
RSS_MARGIN = 24 * 1024 * 1024  # 2,000 sockets' worth of leak at >= 12 KB each would exceed it


def _sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _mask(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    size = len(payload)
    header = struct.pack("!BB", 0x80 | opcode, 0x80 | size) if size < 126 else \
        struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    return header + key + masked


def _request(port: int, key: str) -> bytes:
    nonce = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /app/{key}?protocol=7&client=churn HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    return first & 0x0F, await reader.readexactly(size)


class Client:
    """One raw Pusher socket (asyncio streams): handshake, subscribe, leave in a chosen way."""

    def __init__(self, port: int, app: dict, source: str):
        self.port, self.app, self.source = port, app, source

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port,
                                                                 local_addr=(self.source, 0), limit=1 << 20)
        self.writer.write(_request(self.port, self.app["key"]))
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        frame = json.loads((await asyncio.wait_for(_read_frame(self.reader), 10))[1])
        assert frame["event"] == "pusher:connection_established", frame
        self.socket_id = json.loads(frame["data"])["socket_id"]

    async def subscribe(self, channel: str, user: str | None = None) -> None:
        data = {"channel": channel}
        if user is not None:
            channel_data = json.dumps({"user_id": user, "user_info": {"n": user}})
            data["channel_data"] = channel_data
            data["auth"] = f"{self.app['key']}:{_sign(self.app['secret'], f'{self.socket_id}:{channel}:{channel_data}')}"
        self.writer.write(_mask(0x1, json.dumps({"event": "pusher:subscribe", "data": data}).encode()))
        while True:
            opcode, payload = await asyncio.wait_for(_read_frame(self.reader), 10)
            if opcode == 0x1:
                frame = json.loads(payload)
                if frame.get("channel") == channel and frame["event"].startswith(("pusher_internal:subscription",
                                                                                  "pusher:subscription")):
                    assert frame["event"] == "pusher_internal:subscription_succeeded", frame
                    return

    async def close_cleanly(self) -> None:
        self.writer.write(_mask(0x8, struct.pack("!H", 1000)))
        try:
            while (await asyncio.wait_for(_read_frame(self.reader), 10))[0] != 0x8:
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.writer.close()

    def reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0): no close frame, no FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def _half_handshake(port: int, source: str, kind: str) -> bool:
    """A request that never completes; True once the server closed it (it must, within its deadline)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    if kind != "silent":
        writer.write(b"GET /app/somekey?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    if kind == "reset":
        await asyncio.sleep(0.05)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return True
    try:
        await asyncio.wait_for(reader.read(), 30)  # EOF (b"") or an answer then EOF
        return True
    except (asyncio.TimeoutError, ConnectionError):
        return False
    finally:
        writer.close()


STUCK_CLIENT = textwrap.dedent("""
    import base64, json, os, socket, struct, sys, time
    port, key, channel, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    def frame(payload):
        mask = os.urandom(4)
        return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    socks = []
    for n in range(count):
        s = socket.create_connection(("127.0.0.1", port), source_address=(f"127.0.1.{n % 250 + 2}", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        nonce = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /app/{key}?protocol=7 HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                   f"Sec-WebSocket-Key: {nonce}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n").encode())
        data = b""
        while data.count(b"connection_established") < 1:
            data += s.recv(65536)
        s.sendall(frame(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}).encode()))
        while b"subscription_succeeded" not in data:
            data += s.recv(65536)
        socks.append(s)
    print("subscribed", flush=True)
    while True:
        time.sleep(3600)  # never reads again
""")


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _fd_breakdown(pid: int, port: int) -> dict[str, int]:
    """The process's open descriptors by kind; "client sockets" are TCP sockets accepted on ``port``."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    inodes[fields[9]] = (int(fields[1].rsplit(":", 1)[1], 16), fields[3])
        except OSError:
            pass
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            local, state = inodes.get(target[8:-1], (0, ""))
            if local == port:
                kind = "listening socket" if state == "0A" else "client sockets"
            else:
                kind = "other sockets (Redis pool, ...)" if local else "other sockets (not TCP)"
        else:
            kind = "files (SQLite, ...)" if target.startswith("/") else target.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _signed_get(server, app: dict, path: str, query: dict | None = None) -> dict:
    params = {"auth_key": app["key"], "auth_timestamp": str(int(time.time())), "auth_version": "1.0", **(query or {})}
    to_sign = f"GET\n{path}\n" + "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["auth_signature"] = _sign(app["secret"], to_sign)
    url = f"{server.http}{path}?" + "&".join(f"{k}={v}" for k, v in params.items())
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _publish(server, app: dict, channel: str, data) -> int:
    token = base64.b64encode(f"{app['key']}:{app['secret']}".encode()).decode()
    request = urllib.request.Request(f"{server.http}/publish", method="POST",
                                     data=json.dumps({"channel": channel, "event": "churn", "data": data}).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class RedisKeys:
    """The Redis keys of the server's prefix that describe who is connected. History is left
    out: traffic totals and usage buckets are meant to grow, and the per-second connection
    history is a ring of CONNECTION_HISTORY_SECONDS slots (checked to stay within it)."""

    METERING = (":traffic", ":usage", ":metered:", ":usage_source", ":connhist",
                ":stream", ":history")  # channel history (docs/recovery.md) expires on its own

    def __init__(self, url: str, prefix: str):
        self.client = redis_client.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix

    def snapshot(self) -> dict[str, object]:
        state = {}
        for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000):
            if key.endswith(":connhist"):
                assert self.client.hlen(key) <= CONNECTION_HISTORY_SECONDS, key
            if any(part in key for part in self.METERING) or key.endswith(":nodes"):  # who is live
                continue
            kind = self.client.type(key)
            state[key] = self.client.hgetall(key) if kind == "hash" else kind
        return state


async def _churn(server, app: dict) -> dict:
    """The workload; returns counts of what happened."""
    sem = asyncio.Semaphore(300)
    counts = {"clean": 0, "reset": 0, "half": 0, "half_closed_by_server": 0, "refused": 0}
    rng = random.Random(1234)

    async def one(i: int) -> None:
        async with sem:
            source = SOURCES[i % len(SOURCES)]
            roll = rng.random()
            if roll < 0.08:
                kind = ("partial", "silent", "reset")[i % 3]
                counts["half"] += 1
                if await _half_handshake(server.port, source, kind):
                    counts["half_closed_by_server"] += 1
                return
            client = Client(server.port, app, source)
            await client.open()
            await client.subscribe(PUBLIC[i % len(PUBLIC)])
            if i % 2 == 0:
                await client.subscribe(PRESENCE[i % len(PRESENCE)], user=f"user-{i % 300}")
            await asyncio.sleep(rng.random() * 1.5)
            if roll < 0.35:
                client.reset()
                counts["reset"] += 1
            else:
                await client.close_cleanly()
                counts["clean"] += 1

    async def publisher(stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            channel = (PUBLIC + PRESENCE)[n % (len(PUBLIC) + len(PRESENCE))]
            status = await asyncio.to_thread(_publish, server, app, channel, {"n": n, "pad": "x" * 2000})
            assert status == 200, status
            n += 1
            await asyncio.sleep(0.02)

    stop = asyncio.Event()
    publishing = asyncio.create_task(publisher(stop))
    start = time.monotonic()
    tasks = []
    for i in range(TOTAL):
        delay = start + i / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stop.set()
    await publishing
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} clients failed, e.g. {errors[:3]!r}"
    return counts


async def _stuck_clients(server, app: dict) -> None:
    """Sockets that stop reading while their channel is busy, then freeze and die."""
    child = subprocess.Popen([sys.executable, "-c", STUCK_CLIENT, str(server.port), app["key"], "churn-stuck",
                              str(STUCK_SOCKETS)], stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
        assert line.strip() == "subscribed", line
        child.send_signal(signal.SIGSTOP)
        for n in range(60):  # ~600 KB to each socket that no longer reads
            assert await asyncio.to_thread(_publish, server, app, "churn-stuck", {"n": n, "pad": "y" * 10000}) == 200
    finally:
        child.kill()  # SIGKILL a stopped process: the kernel drops its sockets
        child.wait(10)


async def _served(server, app: dict) -> None:
    client = Client(server.port, app, "127.0.0.1")
    await client.open()
    await client.subscribe("churn-after")
    assert await asyncio.to_thread(_publish, server, app, "churn-after", {"ok": True}) == 200
    while True:
        opcode, payload = await asyncio.wait_for(_read_frame(client.reader), 10)
        if opcode == 0x1 and json.loads(payload).get("channel") == "churn-after":
            break
    await client.close_cleanly()


def _warm_up(server, app: dict) -> None:
    """A first, smaller round: allocations the process makes once (pools, caches) are in the baseline."""
    async def run():
        async def one(i):
            client = Client(server.port, app, SOURCES[i % len(SOURCES)])
            await client.open()
            await client.subscribe(PUBLIC[i % len(PUBLIC)])
            await client.subscribe(PRESENCE[i % len(PRESENCE)], user=f"warm-{i}")
            if i % 3 == 0:
                client.reset()
            else:
                await client.close_cleanly()
        await asyncio.gather(*(one(i) for i in range(300)))
    asyncio.run(run())


def test_churn_resets_and_half_open_sockets_leave_nothing_behind(redis_server):
    cluster = Cluster(redis_server.url)
    server = cluster.start()
    try:
        app = server.create_app("churn", client_events=True)
        pid = server.proc.pid
        keys = RedisKeys(redis_server.url, server.env["TABCAST_REDIS_PREFIX"])

        def settled() -> bool:
            """The API lists no channel and Redis counts no socket of the app on any node."""
            if _signed_get(server, app, f"/apps/{app['app_id']}/channels")["channels"]:
                return False
            return not any(f":{{{app['app_id']}}}:conns:" in key and isinstance(value, dict)
                           and int(value.get("sockets", 0)) for key, value in keys.snapshot().items())

        _warm_up(server, app)
        wait_until(settled, 20, interval=0.2, what="the warm-up's sockets to be released")
        base_fds, base_rss, base_keys = _fds(pid), _rss(pid), keys.snapshot()
        base_breakdown = _fd_breakdown(pid, server.port)

        started = time.monotonic()
        counts = asyncio.run(_churn(server, app))
        asyncio.run(_stuck_clients(server, app))
        churn_seconds = time.monotonic() - started
        assert counts["half_closed_by_server"] == counts["half"], counts  # every half-open one was closed

        # Counts: the API lists no channel, no presence member; Redis holds no socket of the app.
        wait_until(settled, 30, interval=0.2, what="the API and Redis to count no socket")
        for channel in PRESENCE:
            info = _signed_get(server, app, f"/apps/{app['app_id']}/channels/{channel}", {"info": "user_count"})
            assert info.get("occupied") is False and info.get("user_count", 0) == 0, (channel, info)
        try:
            wait_until(lambda: keys.snapshot() == base_keys, 20, interval=0.2, what="Redis keys back to baseline")
        except TimeoutError:
            now = keys.snapshot()
            diff = {k: (base_keys.get(k), now.get(k)) for k in set(now) | set(base_keys) if now.get(k) != base_keys.get(k)}
            raise AssertionError(f"Redis keys not back to baseline: (before, now) {dict(list(diff.items())[:10])}")
        # Every client's socket is closed. Pools may keep what a peak opened: Redis connections (up
        # to TABCAST_REDIS_POOL_SIZE, default 64) and a database connection per worker thread.
        def fds_back() -> bool:
            now = _fd_breakdown(pid, server.port)
            return all(now.get(kind, 0) <= base_breakdown.get(kind, 0) + FD_MARGINS.get(kind, 2)
                       for kind in now)
        try:
            wait_until(fds_back, 20, interval=0.2, what="fds back to baseline")
        except TimeoutError:
            raise AssertionError(f"file descriptors: {base_fds} before, {_fds(pid)} now\nbefore: {base_breakdown}"
                                 f"\nnow: {_fd_breakdown(pid, server.port)}") from None
        wait_until(lambda: _rss(pid) <= base_rss + RSS_MARGIN, 20, interval=0.2,
                   what=f"RSS back near baseline {base_rss >> 20} MiB (now {_rss(pid) >> 20} MiB)")
        asyncio.run(_served(server, app))
        print(f"churn: {counts} in {churn_seconds:.1f}s; fds {base_breakdown} -> {_fd_breakdown(pid, server.port)}, "
              f"RSS {base_rss >> 20} -> {_rss(pid) >> 20} MiB")
    finally:
        cluster.stop()
