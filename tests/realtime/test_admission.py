"""Finding 4 of issue 9: half-open handshakes are closed, and each client IP is limited.

A real ``manage.py serve`` per configuration. Loopback has many addresses (127.0.0.x), so a
client binds its socket to one of them to be "another IP".
"""

import asyncio
import re

import pytest
import requests

from service.realtime import admission
from service.realtime.admission import SWEEP_EVERY, Admission, client_key
from tests.support.clients import python_backend
from tests.support.processes import ROOT, TabcastProcess
from tests.support.raw import RawClient, data_of

HANDSHAKE_TIMEOUT = 2
MAX_SOCKETS_PER_IP = 10
BURST = 15
RATE = 1  # connects per second per IP once the burst is spent
LIMITS = {
    "TABCAST_HANDSHAKE_TIMEOUT": str(HANDSHAKE_TIMEOUT),
    "TABCAST_MAX_SOCKETS_PER_IP": str(MAX_SOCKETS_PER_IP),
    "TABCAST_CONNECTS_PER_IP_PER_SECOND": str(RATE),
    "TABCAST_CONNECT_BURST_PER_IP": str(BURST),
}


@pytest.fixture(scope="module")
def server():
    process = TabcastProcess(extra_env=LIMITS).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def proxied():
    """The same limits behind a proxy on 127.0.0.1 (what nginx is in docker/)."""
    process = TabcastProcess(extra_env={**LIMITS, "TABCAST_TRUSTED_PROXIES": "127.0.0.1"}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def app(server):
    return server.create_app("admission")


@pytest.fixture(scope="module")
def proxied_app(proxied):
    return proxied.create_app("admission")


def from_ip(ip: str, forwarded_for: str | None = None) -> dict:
    options = {"local_addr": (ip, 0)}
    if forwarded_for:
        options["additional_headers"] = {"X-Forwarded-For": forwarded_for}
    return options


async def connect(server, app, ip: str, forwarded_for: str | None = None) -> tuple[RawClient, dict]:
    """A socket and its first frame (connection_established, or the pusher:error of a refusal)."""
    client = await RawClient.connect(server, app["key"], **from_ip(ip, forwarded_for))
    return client, await client.recv()


async def assert_refused(client: RawClient, first: dict, why: str) -> None:
    assert first["event"] == "pusher:error", first
    assert first["data"]["code"] == 4100, first
    assert why in first["data"]["message"], first
    code, _ = await client.closed()
    assert code == 4100


async def open_many(server, app, ip: str, count: int, forwarded_for=None) -> list[RawClient]:
    clients = []
    for n in range(count):
        client, first = await connect(server, app, ip, forwarded_for(n) if forwarded_for else None)
        assert first["event"] == "pusher:connection_established", (n, first)
        clients.append(client)
    return clients


# --- (a) handshake deadline ------------------------------------------------------------------

HALF_UPGRADE = b"GET /app/%s?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


async def half_request(port: int, key: str, kind: str) -> float:
    """Open a connection, send part of a request, keep it that way; seconds until the server closes it.

    kinds: "silent" sends half an upgrade and nothing more; "trickle" adds a header line every
    0.3 s (an idle timeout would never fire); "keepalive" first completes a request, then sends
    half of the next one on the same connection.
    """
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if kind == "keepalive":
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        await reader.readexactly(int(re.search(rb"(?i)content-length: (\d+)", head).group(1)))
    start = loop.time()
    writer.write(HALF_UPGRADE % key.encode())
    try:
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.3)
            except TimeoutError:
                if kind == "trickle":
                    writer.write(b"X-Slow: 1\r\n")
                continue
            if not data:
                return loop.time() - start
    except ConnectionError:
        return loop.time() - start
    finally:
        writer.close()


async def test_half_sent_requests_are_closed_at_the_deadline_while_clients_are_served(server, app):
    kinds = ["silent"] * 100 + ["trickle"] * 50 + ["keepalive"] * 50
    attackers = [asyncio.create_task(half_request(server.port, app["key"], kind)) for kind in kinds]

    # Meanwhile a real client connects, subscribes and receives.
    client, first = await connect(server, app, "127.0.0.4")
    assert first["event"] == "pusher:connection_established", first
    assert (await client.subscribe("news"))["event"] == "pusher_internal:subscription_succeeded"
    await asyncio.to_thread(python_backend(app).trigger, "news", "update", {"n": 1})
    assert data_of(await client.recv_event("update")) == {"n": 1}

    # Every half-open connection is closed by the server within the deadline (plus scheduling).
    done, pending = await asyncio.wait(attackers, timeout=HANDSHAKE_TIMEOUT + 6)
    for task in pending:
        task.cancel()
    assert not pending, f"{len(pending)} of {len(kinds)} half-sent requests still open"
    waited = sorted(task.result() for task in done)
    assert waited[-1] < HANDSHAKE_TIMEOUT + 3, waited[-10:]

    # The deadline ends at the accept: the client, connected well over the timeout ago, still works.
    await client.ping_pong()
    await client.close()


# --- (b) per-IP limits -------------------------------------------------------------------------

async def test_open_sockets_per_ip_are_capped_and_released_on_disconnect(server, app):
    clients = await open_many(server, app, "127.0.0.1", MAX_SOCKETS_PER_IP)
    extra, first = await connect(server, app, "127.0.0.1")
    await assert_refused(extra, first, f"{MAX_SOCKETS_PER_IP} connections")

    # Another address is not affected.
    other, first = await connect(server, app, "127.0.0.2")
    assert first["event"] == "pusher:connection_established", first

    # Closing one gives its slot back (the disconnect is processed asynchronously: retry briefly).
    await clients.pop().close()
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        again, first = await connect(server, app, "127.0.0.1")
        if first["event"] == "pusher:connection_established":
            break
        await assert_refused(again, first, "connections")
        assert asyncio.get_running_loop().time() < deadline, "the closed socket's slot was never released"
    for client in [*clients, again, other]:
        await client.close()


async def test_connect_rate_per_ip_is_limited_even_when_each_socket_closes_at_once(server, app):
    loop = asyncio.get_running_loop()
    start = loop.time()
    admitted = refused = 0
    for _ in range(BURST + 10):
        client, first = await connect(server, app, "127.0.0.3")
        if first["event"] == "pusher:connection_established":
            admitted += 1
            await client.close()
        else:
            await assert_refused(client, first, "connects per second")
            refused += 1
    elapsed = loop.time() - start
    assert BURST <= admitted <= BURST + RATE * elapsed + 1, (admitted, elapsed)
    assert refused >= 10 - RATE * elapsed - 1, (refused, elapsed)

    # Other addresses still connect at once.
    client, first = await connect(server, app, "127.0.0.5")
    assert first["event"] == "pusher:connection_established", first
    await client.close()


# --- (c) client address from trusted proxies only ---------------------------------------------

async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(server, app, proxied, proxied_app):
    # Not trusted (the default): a client cannot pose as many addresses to get around the cap.
    clients = await open_many(server, app, "127.0.0.6", MAX_SOCKETS_PER_IP, forwarded_for=lambda n: f"10.0.0.{n}")
    extra, first = await connect(server, app, "127.0.0.6", "10.0.1.1")
    await assert_refused(extra, first, "connections")

    # Behind the trusted proxy (127.0.0.1) each forwarded client has its own cap...
    clients += await open_many(proxied, proxied_app, "127.0.0.1", MAX_SOCKETS_PER_IP + 3,
                               forwarded_for=lambda n: f"203.0.113.{n}")
    clients += await open_many(proxied, proxied_app, "127.0.0.1", MAX_SOCKETS_PER_IP, forwarded_for=lambda n: "198.51.100.7")
    extra, first = await connect(proxied, proxied_app, "127.0.0.1", "198.51.100.7")
    await assert_refused(extra, first, "connections")
    # ...while another peer's X-Forwarded-For is still ignored on the same server.
    clients += await open_many(proxied, proxied_app, "127.0.0.7", MAX_SOCKETS_PER_IP,
                               forwarded_for=lambda n: f"192.0.2.{n}")
    extra, first = await connect(proxied, proxied_app, "127.0.0.7", "192.0.2.200")
    await assert_refused(extra, first, "connections")
    for client in clients:
        await client.close()


def failed_logins(server, ip_header: dict, attempts: int) -> list[int]:
    session = requests.Session()
    session.get(f"{server.http}/login/", headers=ip_header, timeout=10)
    statuses = []
    for _ in range(attempts):
        response = session.post(f"{server.http}/login/", headers=ip_header, timeout=10, allow_redirects=False,
                                data={"email": "nobody@example.com", "password": "wrong password",
                                      "csrfmiddlewaretoken": session.cookies["csrftoken"]})
        statuses.append(response.status_code)
    return statuses


def test_the_dashboards_login_limit_counts_the_forwarded_client_only_from_a_trusted_proxy(server, proxied):
    # Behind the proxy: one forwarded client is limited, another one is not (it was global before).
    statuses = failed_logins(proxied, {"X-Forwarded-For": "203.0.113.50"}, 11)
    assert statuses[:10] == [200] * 10 and statuses[10] == 429, statuses
    assert failed_logins(proxied, {"X-Forwarded-For": "203.0.113.51"}, 1) == [200]
    # Directly exposed: a forged X-Forwarded-For does not buy a fresh limit.
    assert failed_logins(server, {"X-Forwarded-For": "203.0.113.60"}, 10) == [200] * 10
    assert failed_logins(server, {"X-Forwarded-For": "203.0.113.61"}, 1) == [429]


def test_admission_settings_are_documented():
    readme = (ROOT / "README.md").read_text()
    for name in ("TABCAST_HANDSHAKE_TIMEOUT", "TABCAST_MAX_SOCKETS_PER_IP", "TABCAST_CONNECTS_PER_IP_PER_SECOND",
                 "TABCAST_CONNECT_BURST_PER_IP", "TABCAST_TRUSTED_PROXIES"):
        assert f"`{name}`" in readme, name


# --- the bookkeeping itself ------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_bucket_refills_at_the_rate_and_idle_addresses_are_forgotten():
    clock = Clock()
    limits = Admission(max_sockets=3, rate=2, burst=4, clock=clock)
    assert [limits.admit("a") for _ in range(3)] == [None] * 3
    assert "3 connections" in limits.admit("a")  # the cap, before the bucket is empty
    for _ in range(3):
        limits.release("a")
    limits.release("a")  # more releases than admits never go below zero
    assert limits.open_sockets("a") == 0
    assert limits.admit("a") is None  # the 4th token
    limits.release("a")
    assert "connects per second" in limits.admit("a")
    clock.now += 0.5  # one token back at 2/s
    assert limits.admit("a") is None
    limits.release("a")
    assert "connects per second" in limits.admit("a")
    # Thousands of addresses that came and went leave nothing behind once their buckets are full.
    for n in range(5000):
        assert limits.admit(f"10.0.{n // 256}.{n % 256}") is None
        limits.release(f"10.0.{n // 256}.{n % 256}")
    assert limits.admit("b") is None  # still open: kept
    clock.now += SWEEP_EVERY + 2
    limits.admit("c")
    assert len(limits) == 2 and limits.open_sockets("b") == 1


def test_ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4():
    assert client_key({"client": ("2001:db8:1:2:aaaa::1", 5)}) == "2001:db8:1:2::/64"
    assert client_key({"client": ("2001:db8:1:2:bbbb::9", 5)}) == "2001:db8:1:2::/64"
    assert client_key({"client": ("2001:db8:1:3::1", 5)}) == "2001:db8:1:3::/64"
    assert client_key({"client": ("::ffff:192.0.2.1", 5)}) == "192.0.2.1"
    assert client_key({"client": ("192.0.2.1", 5)}) == "192.0.2.1"
    assert client_key({"client": None}) is None


def test_a_slot_is_released_once_per_admitted_scope(settings):
    settings.TABCAST = {**settings.TABCAST, "MAX_SOCKETS_PER_IP": 1}
    admission._admission = None
    try:
        first, second = {"client": ("192.0.2.9", 1)}, {"client": ("192.0.2.9", 2)}
        assert admission.admit(first) is None
        assert admission.admit(second) is not None
        admission.release(second)  # refused: holds no slot, gives none back
        assert admission.get_admission().open_sockets("192.0.2.9") == 1
        admission.release(first)
        admission.release(first)
        assert admission.get_admission().open_sockets("192.0.2.9") == 0
    finally:
        admission._admission = None
