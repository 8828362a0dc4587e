"""The process-local registry: which of *this process's* sockets want which channel.

The hub never talks to Redis or the channel layer. It answers "is this the first/last local
subscriber?" (so the process joins or leaves the channel's group once) and writes one
pre-encoded frame to every local subscriber.

Fair fan-out. One process serves many tenants on one event loop, and a broadcast to 5,000
sockets is ~40-60 ms of sends. Written in one go it would hold every other tenant's message
(and every HTTP request) behind it. So a broadcast to more than a slice of local sockets (or one
for an app that already has fan-out waiting: its messages stay in order) becomes a job, and one
task writes the jobs in slices (``SLICE`` sockets; ``SOLO_SLICE`` while one app has all the
subscribers), one slice per app in turn, yielding to the event loop after each round. A small broadcast of another app is still written at once, so it
waits at most one slice. ``backlog`` (deliveries waiting) lets the broker stop taking messages
while it is large, as the synchronous loop did: memory stays bounded when publishers outrun the
process.
"""

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass

from .connection import Connection, text_frame
from .state.base import TRAFFIC_FIELDS

ChannelKey = tuple[int, str]  # (app id, channel name)


@dataclass(slots=True)
class AppTraffic:
    """Counters of one app in this process since the last metering flush."""

    deliveries: int = 0
    bytes: int = 0
    messages: int = 0  # publishes accepted (HTTP + client events)
    # What one socket per tab would have sent: a delivery to a socket carrying N tabs counts N.
    logical_deliveries: int = 0
    logical_bytes: int = 0
    # Recovery (docs/recovery.md): subscriptions resumed with everything missed, or told they were not,
    # and the messages and bytes written to channel history.
    resumes_recovered: int = 0
    resumes_unrecovered: int = 0
    stored_messages: int = 0
    stored_bytes: int = 0

    def counts(self) -> list[int]:
        """The counters in TRAFFIC_FIELDS order (the order ClusterState.add_metering takes them)."""
        return [getattr(self, name) for name in TRAFFIC_FIELDS]


assert set(TRAFFIC_FIELDS) <= set(AppTraffic.__slots__), "AppTraffic must count every TRAFFIC_FIELDS field"

# Sockets written per app per round. A neighbour's message waits at most one slice (~0.4-0.8 ms
# of sends here at 64), but each round costs a trip through the event loop, so while only one app
# has subscribers in this process (nobody to wait) rounds are longer.
SLICE = 64
SOLO_SLICE = 256


class _FanOut:
    """One broadcast being written in slices: the subscribers as they were when it arrived."""

    __slots__ = ("app_id", "frame", "wire", "size", "targets", "done", "except_socket")

    def __init__(self, app_id: int, frame: str, wire: bytes, targets: list[Connection], except_socket):
        self.app_id, self.frame, self.wire, self.targets = app_id, frame, wire, targets
        self.size = len(frame.encode())
        self.done = 0
        self.except_socket = except_socket


class Hub:
    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self._channels: dict[ChannelKey, dict[str, Connection]] = {}
        self._app_channels: dict[int, int] = {}  # app id -> its channels with local subscribers
        self._app_sockets: dict[int, int] = defaultdict(int)
        self._app_tabs: dict[int, int] = defaultdict(int)
        self.traffic: dict[int, AppTraffic] = defaultdict(AppTraffic)
        self._jobs: dict[int, deque[_FanOut]] = {}  # app id -> its broadcasts waiting, in order
        self.backlog = 0  # deliveries waiting in jobs
        self._writer: asyncio.Task | None = None
        self._drained: asyncio.Event | None = None  # set when the backlog falls to _resume_at
        self._resume_at = 0

    # --- connections ---

    def add_connection(self, conn: Connection) -> None:
        self.connections[conn.socket_id] = conn
        self._app_sockets[conn.app.id] += 1
        self._app_tabs[conn.app.id] += conn.tabs

    def remove_connection(self, conn: Connection) -> None:
        if self.connections.pop(conn.socket_id, None) is None:
            return
        app_id = conn.app.id
        self._app_sockets[app_id] -= 1
        self._app_tabs[app_id] -= conn.tabs
        if self._app_sockets[app_id] <= 0:
            del self._app_sockets[app_id]
            self._app_tabs.pop(app_id, None)

    def set_tabs(self, conn: Connection, tabs: int) -> None:
        if conn.socket_id in self.connections:
            self._app_tabs[conn.app.id] += tabs - conn.tabs
        conn.tabs = tabs

    def app_sockets(self, app_id: int) -> int:
        return self._app_sockets.get(app_id, 0)

    def app_tabs(self, app_id: int) -> int:
        return self._app_tabs.get(app_id, 0)

    def apps(self) -> list[int]:
        return list(self._app_sockets)

    # --- subscriptions ---

    def subscribe(self, app_id: int, channel: str, conn: Connection) -> bool:
        """Add a local subscriber; True if it is the first one in this process."""
        key = (app_id, channel)
        subscribers = self._channels.get(key)
        first = subscribers is None
        if first:
            subscribers = self._channels[key] = {}
            self._app_channels[app_id] = self._app_channels.get(app_id, 0) + 1
        subscribers[conn.socket_id] = conn
        return first

    def unsubscribe(self, app_id: int, channel: str, conn: Connection) -> bool:
        """Remove a local subscriber; True if it was the last one in this process."""
        key = (app_id, channel)
        subscribers = self._channels.get(key)
        if subscribers is None or subscribers.pop(conn.socket_id, None) is None:
            return False
        if not subscribers:
            del self._channels[key]
            if self._app_channels[app_id] == 1:
                del self._app_channels[app_id]
            else:
                self._app_channels[app_id] -= 1
            return True
        return False

    def local_count(self, app_id: int, channel: str) -> int:
        return len(self._channels.get((app_id, channel), ()))

    def local_channels(self) -> list[ChannelKey]:
        return list(self._channels)

    def subscribers(self, app_id: int, channel: str) -> list[Connection]:
        return list(self._channels.get((app_id, channel), {}).values())

    def replace(self, app_id: int, channel: str, stand_in, conn: Connection) -> bool:
        """Put ``conn`` where ``stand_in`` (node.py's resume buffer) subscribed for it, if it still is."""
        subscribers = self._channels.get((app_id, channel))
        if subscribers is None or subscribers.get(conn.socket_id) is not stand_in:
            return False
        subscribers[conn.socket_id] = conn
        return True

    def broadcast(self, app_id: int, channel: str, frame: str, except_socket: str | None = None,
                  skip: set[str] | None = None) -> int:
        """Write one encoded frame to every local subscriber but ``except_socket``; returns how many.

        Written now, or (a large channel, or an app with fan-out waiting) in slices by the fan-out
        task, in order per app. ``skip``: more socket ids to leave out (node.py: sockets that
        resumed past this frame's position).
        """
        subscribers = self._channels.get((app_id, channel))
        if not subscribers:
            return 0
        if skip:
            subscribers = {socket_id: conn for socket_id, conn in subscribers.items() if socket_id not in skip}
        wire = text_frame(frame)  # framed once: with no extensions every socket gets the same bytes
        if len(subscribers) <= self._slice() and app_id not in self._jobs:
            return self._write(app_id, frame, wire, subscribers.values(), except_socket)
        job = _FanOut(app_id, frame, wire, list(subscribers.values()), except_socket)
        jobs = self._jobs.get(app_id)
        if jobs is None:
            jobs = self._jobs[app_id] = deque()
        jobs.append(job)
        self.backlog += len(job.targets)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_jobs())
        return len(job.targets) - (except_socket in subscribers)

    def _slice(self) -> int:
        return SLICE if len(self._app_channels) > 1 else SOLO_SLICE

    def _write(self, app_id: int, frame: str, wire: bytes, targets, except_socket: str | None,
               size: int | None = None) -> int:
        sent = 0
        extra_tabs = 0  # tabs beyond one per socket; most sockets carry exactly one
        for conn in targets:  # Connection.send never changes the hub's dicts
            if conn.socket_id != except_socket:
                conn.send(frame, wire)
                sent += 1
                if conn.tabs != 1:
                    extra_tabs += conn.tabs - 1
        if size is None:
            size = len(frame.encode())
        traffic = self.traffic[app_id]
        traffic.deliveries += sent
        traffic.bytes += sent * size
        traffic.logical_deliveries += sent + extra_tabs
        traffic.logical_bytes += (sent + extra_tabs) * size
        return sent

    async def _write_jobs(self) -> None:
        """Write waiting broadcasts: a slice per app in turn, then let the event loop run."""
        try:
            while self._jobs:
                for app_id in list(self._jobs):
                    jobs = self._jobs[app_id]
                    job = jobs[0]
                    end = job.done + self._slice()
                    self._write(app_id, job.frame, job.wire, job.targets[job.done:end], job.except_socket, job.size)
                    written = min(end, len(job.targets)) - job.done
                    job.done += written
                    self.backlog -= written
                    if job.done >= len(job.targets):
                        jobs.popleft()
                        if not jobs:
                            del self._jobs[app_id]
                if self._drained is not None and self.backlog <= self._resume_at:
                    self._drained.set()
                await asyncio.sleep(0)
        finally:
            self._writer = None
            if self._drained is not None:
                self._drained.set()

    async def wait_backlog_below(self, limit: int) -> None:
        """Return once fewer than ``limit`` deliveries wait (the broker's backpressure)."""
        while self.backlog >= limit and self._writer is not None:
            self._resume_at = limit // 2  # resume at half: not one message at a time
            self._drained = asyncio.Event()
            try:
                await self._drained.wait()
            finally:
                self._drained = None

    def count_replayed(self, app_id: int, conn: Connection, frames: list[str]) -> None:
        """Count frames written to one socket outside a broadcast (a resume's replay) as deliveries."""
        size = sum(len(frame.encode()) for frame in frames)
        traffic = self.traffic[app_id]
        traffic.deliveries += len(frames)
        traffic.bytes += size
        traffic.logical_deliveries += len(frames) * conn.tabs
        traffic.logical_bytes += size * conn.tabs

    def count_resumes(self, app_id: int, recovered: bool, n: int = 1) -> None:
        if recovered:
            self.traffic[app_id].resumes_recovered += n
        else:
            self.traffic[app_id].resumes_unrecovered += n

    def count_stored(self, app_id: int, size: int) -> None:
        """A message written to channel history (streams.py)."""
        traffic = self.traffic[app_id]
        traffic.stored_messages += 1
        traffic.stored_bytes += size

    def count_published(self, app_id: int, n: int = 1) -> None:
        self.traffic[app_id].messages += n

    def take_traffic(self) -> dict[int, AppTraffic]:
        """Hand over the counters gathered since the last call and start new ones."""
        taken, self.traffic = self.traffic, defaultdict(AppTraffic)
        return dict(taken)
