"""Per-client-IP admission of WebSockets: how many may be open, and how fast they may connect.

One client address may hold at most ``TABCAST_MAX_SOCKETS_PER_IP`` open sockets and open new
ones at ``TABCAST_CONNECTS_PER_IP_PER_SECOND`` (a token bucket holding
``TABCAST_CONNECT_BURST_PER_IP``). A socket over either limit is accepted, gets
``pusher:error`` with code 4100 ("Over capacity": pusher-js backs off and retries; 4004 is the
*app's* connection quota and 4301 would make clients give up), and is closed with 4100.

The limits are **per process**: with ``--workers N`` an address may hold up to N times as many
sockets (the kernel spreads its connects over the workers). Keeping the counts in memory costs
a dict operation per connect and nothing per message.

The address is ``scope["client"]``: the TCP peer, or, when the peer is one of
``TABCAST_TRUSTED_PROXIES``, the client it names in ``X-Forwarded-For`` (uvicorn's proxy
middleware rewrites the scope; see ``server.py``). IPv6 addresses count per /64, the block a
single customer line usually gets; IPv4-mapped IPv6 addresses count as their IPv4 address.

Used by ``consumer.PusherConsumer``: :func:`admit` once when a socket connects, :func:`release`
when its consumer ends (whatever way it ends).
"""

import ipaddress
import time

from django.conf import settings

from .ratelimit import TokenBucket

SCOPE_KEY = "tabcast.admission"  # the counted address, kept in the scope until released
SWEEP_EVERY = 10.0  # seconds between sweeps of idle addresses


class Admission:
    """Open-socket counts and connect token buckets per address, for one process."""

    def __init__(self, max_sockets: int, rate: float, burst: int, clock=time.monotonic):
        self.max_sockets = max_sockets
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self._open: dict[str, int] = {}  # address -> open sockets (addresses with none are not kept)
        self._connects = TokenBucket(rate, self.burst, clock=clock)  # per address
        self._next_sweep = clock() + SWEEP_EVERY

    def admit(self, address: str) -> str | None:
        """Count one new socket from ``address``; None if admitted, else why it is refused."""
        now = self.clock()
        if now >= self._next_sweep:
            self._sweep(now)
        open_sockets = self._open.get(address, 0)
        if self.max_sockets and open_sockets >= self.max_sockets:
            return f"Over capacity: {self.max_sockets} connections from your address are open"
        if self.rate and not self._connects.allow(address):
            return f"Over capacity: more than {self.rate:g} connects per second from your address"
        self._open[address] = open_sockets + 1
        return None

    def release(self, address: str) -> None:
        open_sockets = self._open.get(address, 0)
        if open_sockets > 1:
            self._open[address] = open_sockets - 1
        elif open_sockets:
            del self._open[address]

    def open_sockets(self, address: str) -> int:
        return self._open.get(address, 0)

    def _sweep(self, now: float) -> None:
        """Forget addresses with no open socket and a full bucket: memory stays bounded by the
        addresses active in the last few seconds (a bucket refills in burst / rate seconds)."""
        self._next_sweep = now + SWEEP_EVERY
        self._connects.forget_full()

    def __len__(self) -> int:
        """Addresses remembered: with an open socket, or a bucket still refilling."""
        return len(self._open.keys() | set(self._connects))


_admission: Admission | None = None


def get_admission() -> Admission:
    global _admission
    if _admission is None:
        config = settings.TABCAST
        _admission = Admission(config["MAX_SOCKETS_PER_IP"], config["CONNECTS_PER_IP_PER_SECOND"],
                               config["CONNECT_BURST_PER_IP"])
    return _admission


def client_key(scope) -> str | None:
    """The address a socket counts against: its IPv4 address, or its IPv6 /64; None if unknown."""
    client = scope.get("client")
    host = client[0] if client else None
    if not host or not isinstance(host, str):
        return None
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host  # not an address (a unix socket path, a proxy's junk): counted as given
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def admit(scope) -> str | None:
    """Admit the socket of this ASGI scope: None if admitted (call :func:`release` later), else
    the reason to refuse it with 4100."""
    key = client_key(scope)
    if key is None:
        return None
    refused = get_admission().admit(key)
    if refused is None:
        scope[SCOPE_KEY] = key
    return refused


def release(scope) -> None:
    """Give back the slot :func:`admit` took for this scope (a no-op if it took none or gave it back)."""
    key = scope.pop(SCOPE_KEY, None)
    if key is not None:
        get_admission().release(key)
