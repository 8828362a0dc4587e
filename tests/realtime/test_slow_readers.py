"""Slow readers: a socket that stops reading either catches up with every frame in order, or is
closed with 4100 (aborted if it won't take the close) and releases everything it held, while
the server's memory stays bounded and everyone else keeps receiving.

The clients here are raw TCP sockets with a small receive buffer, the way an attacker (or a
phone on a bad network) holds a WebSocket open without reading it.
"""

import asyncio
import base64
import json
import os
import re
import socket
import struct
import urllib.request

import httpx
import pytest

from service.realtime import signatures
from tests.support.processes import TabcastProcess, wait_until
from tests.support.raw import RawClient, data_of, subscribed


class StalledSocket:
    """A WebSocket client on a plain blocking socket: it reads only when told to."""

    def __init__(self, server, key: str, read_handshake: bool = True):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.settimeout(10)
        nonce = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /app/{key}?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        self.socket_id = None
        if read_handshake:
            while b"\r\n\r\n" not in self.buffer:
                self.buffer += self.sock.recv(4096)
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            established = self.frame()
            self.socket_id = json.loads(json.loads(established[1])["data"])["socket_id"]

    def send(self, frame: dict) -> None:
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        header = bytes([0x81]) + (bytes([0x80 | len(payload)]) if len(payload) < 126
                                  else bytes([0x80 | 126]) + struct.pack("!H", len(payload)))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _need(self, n: int) -> None:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed by the server")
            self.buffer += chunk

    def frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame."""
        self._need(2)
        opcode, size = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
        start = 2
        if size == 126:
            self._need(4)
            size, start = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif size == 127:
            self._need(10)
            size, start = struct.unpack("!Q", self.buffer[2:10])[0], 10
        self._need(start + size)
        payload, self.buffer = self.buffer[start:start + size], self.buffer[start + size:]
        return opcode, payload

    def event(self) -> dict:
        opcode, payload = self.frame()
        assert opcode == 0x1, (opcode, payload)
        return json.loads(payload)

    def close(self) -> None:
        self.sock.close()


def channel_count(server, app, channel: str) -> int:
    from tests.realtime.test_http_api import signed

    with urllib.request.urlopen(server.http + signed(app, "GET", f"/apps/{app['app_id']}/channels/{channel}",
                                                     params={"info": "subscription_count"}), timeout=5) as r:
        return json.loads(r.read())["subscription_count"]


def open_sockets(server) -> int:
    with urllib.request.urlopen(server.http + "/metrics", timeout=5) as response:
        return int(re.search(rb"^tabcast_connections\{[^}]*\} (\d+)(?:\.0)?$", response.read(), re.M).group(1))


def server_end_exists(server_port: int, client_port: int) -> bool:
    """Whether the kernel still has the server's end of this TCP connection (any state)."""
    wanted = (f":{server_port:04X}", f":{client_port:04X}")
    with open("/proc/net/tcp") as table:
        return any(fields[1].endswith(wanted[0]) and fields[2].endswith(wanted[1])
                   for fields in (line.split() for line in table.readlines()[1:]))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def collect(client: RawClient, event: str = "e") -> tuple[list, asyncio.Task]:
    """Read a healthy client continuously in the background; returns (data of each ``event``, task)."""
    seen: list = []

    async def read():
        while True:
            frame = await client.recv(timeout=60)
            if frame.get("event") == event:
                seen.append(json.loads(frame["data"])["n"])
            elif frame.get("event") == "pusher_internal:member_removed":
                seen.append(("member_removed", data_of(frame)["user_id"]))

    return seen, asyncio.get_running_loop().create_task(read())


async def until(condition, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def publisher(server, app) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.http, auth=(app["key"], app["secret"]), timeout=10)


async def publish(client: httpx.AsyncClient, channels: list[str], data: str, event: str = "e") -> None:
    response = await client.post("/publish", json={"channels": channels, "event": event, "data": data})
    assert response.status_code == 200, response.text


def subscribe_blind(stalled: StalledSocket, server, app, channels: list[str]) -> None:
    """Subscribe without reading the answers; the HTTP API tells when it took effect."""
    for channel in channels:
        stalled.send({"event": "pusher:subscribe", "data": {"channel": channel}})
    wait_until(lambda: channel_count(server, app, channels[-1]) >= 1, 10, what="subscriptions")


@pytest.fixture(scope="module")
def patient():
    """A server whose per-socket limit (16 MiB) is far above what a pause here leaves pending."""
    server = TabcastProcess(extra_env={"TABCAST_MAX_PENDING_BYTES": str(16 * 1024 * 1024)}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["embedded", "redis", "daphne"])
def strict(request):
    """A server that closes a socket once 256 KiB wait for it, and aborts it 3 s later."""
    env = {"TABCAST_MAX_PENDING_BYTES": str(256 * 1024), "TABCAST_SLOW_CLOSE_DEADLINE": "3"}
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    server = TabcastProcess(redis_url=redis_url, extra_env=env,
                            server="daphne" if request.param == "daphne" else "uvicorn").start()
    yield server
    server.stop()


async def test_a_reader_that_pauses_catches_up_with_every_frame_in_order(patient):
    app = patient.create_app("pause")
    stalled = StalledSocket(patient, app["key"])
    subscribe_blind(stalled, patient, app, ["feed"])
    blob = "x" * 10_000
    async with publisher(patient, app) as client:
        for n in range(600):  # ~6 MB while nobody reads: more than the kernel buffers hold
            await publish(client, ["feed"], json.dumps({"n": n, "blob": blob}))
    assert stalled.event()["event"] == "pusher_internal:subscription_succeeded"
    received = [json.loads(stalled.event()["data"])["n"] for _ in range(600)]
    assert received == list(range(600))
    stalled.send({"event": "pusher:ping", "data": {}})
    assert stalled.event()["event"] == "pusher:pong"  # still served, still in order
    stalled.close()


async def test_a_reader_that_stops_is_closed_with_4100_and_releases_everything(strict):
    app = strict.create_app("stops")
    strict.manage("shell", "-c", (  # a tenant of its own on a plan of two connections
        "from billing.models import Plan, Subscription; from tenants.models import App, Tenant; "
        f"a = App.objects.get(id={app['app_id']}); "
        "a.tenant = Tenant.objects.create(name='two-%d' % a.id); a.save(); "
        "p = Plan.objects.create(code='two-%d' % a.id, name='Two', max_connections=2); "
        "Subscription.objects.create(tenant=a.tenant, plan=p)"))
    channel_data = '{"user_id":"sleeper"}'
    stalled = StalledSocket(strict, app["key"])
    auth = f"{app['key']}:{signatures.sign(app['secret'], f'{stalled.socket_id}:presence-room:{channel_data}')}"
    stalled.send({"event": "pusher:subscribe", "data": {"channel": "presence-room", "auth": auth,
                                                        "channel_data": channel_data}})
    assert stalled.event()["event"] == "pusher_internal:subscription_succeeded"
    stalled.send({"event": "pusher:subscribe", "data": {"channel": "feed"}})
    assert stalled.event()["event"] == "pusher_internal:subscription_succeeded"

    healthy = await RawClient.established(strict, app["key"])
    data = '{"user_id":"awake"}'
    auth = f"{app['key']}:{signatures.sign(app['secret'], f'{healthy.socket_id}:presence-room:{data}')}"
    assert (await healthy.subscribe("presence-room", auth=auth, channel_data=data))["event"].endswith("succeeded")
    assert (await healthy.subscribe("feed"))["event"].endswith("succeeded")
    # The quota (2 sockets) is full: a third is refused while the sleeper holds its slot.
    third = await RawClient.connect(strict, app["key"])
    assert (await third.recv())["data"]["code"] == 4004

    seen, reading = collect(healthy)
    blob = "x" * 10_000
    published = 0
    async with publisher(strict, app) as client:
        while channel_count(strict, app, "feed") == 2:  # the sleeper still holds its subscription
            for _ in range(20):
                await publish(client, ["feed"], json.dumps({"n": published, "blob": blob}))
                published += 1
            assert published < 5_000, "the sleeper was never closed"
        # Released at once, not when the peer wakes up: presence, counts and the quota slot.
        await until(lambda: ("member_removed", "sleeper") in seen)
        newcomer = await RawClient.established(strict, app["key"])
        await publish(client, ["feed"], json.dumps({"n": "after"}))
        await until(lambda: "after" in seen)
    reading.cancel()
    # The healthy socket got every event, in order, meanwhile.
    assert [n for n in seen if isinstance(n, int)] == list(range(published))

    # The sleeper wakes up: what was pending arrives in order, then the 4100 close.
    numbers = []
    while True:
        opcode, payload = stalled.frame()
        if opcode == 0x8:
            break
        frame = json.loads(payload)
        if frame["event"] == "e":
            numbers.append(json.loads(frame["data"])["n"])
    assert struct.unpack("!H", payload[:2])[0] == 4100
    assert numbers == list(range(len(numbers))) and 0 < len(numbers) < published
    stalled.close()
    for client in (healthy, newcomer):
        await client.close()


async def test_a_resume_whose_replay_outgrows_a_stalled_reader_is_closed_with_4100(strict):
    """A replay goes out at the reader's pace: a socket that resumes 1,000 missed 10 KB messages
    (10 MB, ten times the pending-bytes limit) and reads nothing gets the first of them in order
    and a 4100 close, not 10 MB parked in the server's memory; a socket that reads gets all of
    them and `recovered: true` (before, it was closed as slow: the replay went out at once)."""
    app = strict.create_app("replay")
    strict.update_app(app["app_id"], history_size=1000)
    first, answer = await subscribed(strict, app["key"], "feed")
    await first.close()
    blob = "x" * 10_000
    async with publisher(strict, app) as client:
        for n in range(1000):
            await publish(client, ["feed"], json.dumps({"n": n, "blob": blob}))

    stalled = StalledSocket(strict, app["key"])
    stalled.send({"event": "pusher:subscribe", "data": {"channel": "feed", "position": answer["position"]}})
    # Released as soon as the replay overflowed the limit (the socket is closed, not read).
    wait_until(lambda: channel_count(strict, app, "feed") == 0, 20, what="the stalled socket to be released")
    # What reached it: the first frames in order, then 4100, or a reset if the server had given up
    # on the close handshake before we read (the close deadline here, 1 s on daphne: autobahn's).
    numbers, close_code = [], None
    try:
        assert stalled.event()["event"] == "pusher_internal:subscription_succeeded"
        while close_code is None:
            opcode, payload = stalled.frame()
            if opcode == 0x8:
                close_code = struct.unpack("!H", payload[:2])[0]
            else:
                numbers.append(json.loads(json.loads(payload)["data"])["n"])
    except ConnectionResetError:
        pass
    assert close_code in (4100, None)
    assert numbers == list(range(len(numbers))) and len(numbers) < 1000  # in order, then cut
    stalled.close()

    reader, _ = await subscribed(strict, app["key"], "feed", position=answer["position"])  # others still served
    frames = [await reader.recv() for _ in range(1001)]
    assert [json.loads(f["data"])["n"] for f in frames[:1000]] == list(range(1000))
    assert data_of(frames[1000]) == {"recovered": True, "missed": 1000}
    await reader.close()


async def test_a_client_that_never_reads_is_aborted_and_memory_stays_bounded(strict):
    app = strict.create_app("never")
    baseline_sockets = open_sockets(strict)
    silent = StalledSocket(strict, app["key"], read_handshake=False)  # never reads a single byte
    # A client must not send frames before the handshake is answered; the server tells when it was.
    wait_until(lambda: open_sockets(strict) == baseline_sockets + 1, 10, what="the handshake")
    channels = [f"small-{i}" for i in range(100)]
    subscribe_blind(silent, strict, app, channels)
    rss_before = rss_kib(strict.proc.pid)
    sent = 0
    async with publisher(strict, app) as client:
        while channel_count(strict, app, "small-0"):
            for _ in range(20):  # 100 small frames per publish: ~100 B each, bounded like big ones
                await publish(client, channels, "y" * 60)
                sent += len(channels)
            assert sent < 2_000_000, "the silent client was never closed"
    growth_mib = (rss_kib(strict.proc.pid) - rss_before) / 1024
    assert growth_mib < 24, f"server RSS grew {growth_mib:.1f} MiB for one silent socket"
    assert sent > 10_000  # it did have to buffer: the kernel took the first few MB
    # Released at once; and as it never takes its close frame, its connection is aborted once the
    # close deadline (3 s) passes: neither the server nor its kernel holds anything for it any more.
    wait_until(lambda: open_sockets(strict) == baseline_sockets, 5, what="the socket to leave the hub")
    client_port = silent.sock.getsockname()[1]
    wait_until(lambda: not server_end_exists(strict.port, client_port), 10, what="the connection to be reset")
    with pytest.raises(ConnectionResetError):
        while silent.sock.recv(1 << 20):
            pass
    silent.close()


async def test_a_slow_socket_does_not_delay_the_others(strict):
    app = strict.create_app("neighbours")
    baseline_sockets = open_sockets(strict)
    silent = StalledSocket(strict, app["key"], read_handshake=False)
    wait_until(lambda: open_sockets(strict) == baseline_sockets + 1, 10, what="the handshake")
    subscribe_blind(silent, strict, app, ["feed"])
    readers = [await RawClient.established(strict, app["key"]) for _ in range(3)]
    for reader in readers:
        await reader.subscribe("feed")
    collected = [collect(reader) for reader in readers]
    async with publisher(strict, app) as client:
        for n in range(400):
            await publish(client, ["feed"], json.dumps({"n": n, "blob": "z" * 10_000}))
    for seen, reading in collected:
        await until(lambda: len(seen) == 400)
        reading.cancel()
        assert seen == list(range(400))
    for reader in readers:
        await reader.close()
    silent.close()
