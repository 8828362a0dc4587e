"""The process-local registry: which of *this process's* sockets want which channel.

The hub never talks to Redis or the channel layer. It answers "is this the first/last local
subscriber?" (so the process joins or leaves the channel's group once) and writes one
pre-encoded frame to every local subscriber.
"""

from collections import defaultdict
from dataclasses import dataclass

from .connection import Connection, text_frame

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


class Hub:
    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self._channels: dict[ChannelKey, dict[str, Connection]] = {}
        self._app_sockets: dict[int, int] = defaultdict(int)
        self._app_tabs: dict[int, int] = defaultdict(int)
        self.traffic: dict[int, AppTraffic] = defaultdict(AppTraffic)

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
            return True
        return False

    def local_count(self, app_id: int, channel: str) -> int:
        return len(self._channels.get((app_id, channel), ()))

    def local_channels(self) -> list[ChannelKey]:
        return list(self._channels)

    def subscribers(self, app_id: int, channel: str) -> list[Connection]:
        return list(self._channels.get((app_id, channel), {}).values())

    def broadcast(self, app_id: int, channel: str, frame: str, except_socket: str | None = None) -> int:
        """Write one encoded frame to every local subscriber but ``except_socket``."""
        subscribers = self._channels.get((app_id, channel))
        if not subscribers:
            return 0
        wire = text_frame(frame)  # framed once: with no extensions every socket gets the same bytes
        sent = 0
        extra_tabs = 0  # tabs beyond one per socket; most sockets carry exactly one
        for socket_id, conn in subscribers.items():  # Connection.send never changes the dict
            if socket_id != except_socket:
                conn.send(frame, wire)
                sent += 1
                if conn.tabs != 1:
                    extra_tabs += conn.tabs - 1
        size = len(frame.encode())
        traffic = self.traffic[app_id]
        traffic.deliveries += sent
        traffic.bytes += sent * size
        traffic.logical_deliveries += sent + extra_tabs
        traffic.logical_bytes += (sent + extra_tabs) * size
        return sent

    def count_published(self, app_id: int, n: int = 1) -> None:
        self.traffic[app_id].messages += n

    def take_traffic(self) -> dict[int, AppTraffic]:
        """Hand over the counters gathered since the last call and start new ones."""
        taken, self.traffic = self.traffic, defaultdict(AppTraffic)
        return dict(taken)
