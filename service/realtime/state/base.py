"""The cluster-wide state contract: what all processes must agree on.

Fan-out does not live here (that is the channel layer's job); this is the bookkeeping that
must be the same whichever process a socket landed on: subscription counts, presence
members, connection counts, cache-channel payloads and traffic counters.

Every method is a coroutine. Implementations: ``memory.MemoryState`` (one process, the
embedded default) and ``redis.RedisState`` (any number of processes). Entries written by a
process that dies expire after ``TABCAST["NODE_TTL"]`` seconds without its heartbeat.
"""

from dataclasses import dataclass
from typing import Any, Protocol

# The traffic counters, named once: hub.AppTraffic counts them per app in a process, node flushes
# them in this order to add_metering, the backends keep them, billing rolls them up (UsageCounters).
# add_traffic / add_usage / add_metering take them positionally in this order (then tab_seconds).
# The last four are recovery's (docs/recovery.md): subscriptions resumed with nothing missed or
# told they were not (tabcast:resumed), and the messages and bytes written to channel history.
TRAFFIC_FIELDS = ("messages", "deliveries", "bytes", "logical_deliveries", "logical_bytes",
                  "resumes_recovered", "resumes_unrecovered", "stored_messages", "stored_bytes")


@dataclass(frozen=True, slots=True)
class Member:
    """A presence member: ``user_id`` exactly as the auth endpoint gave it (string or number)."""

    user_id: Any
    user_info: Any = None

    @property
    def key(self) -> str:
        return user_key(self.user_id)


def user_key(user_id: Any) -> str:
    """The string form used to de-duplicate users (``2`` and ``"2"`` are the same user)."""
    return user_id if isinstance(user_id, str) else str(user_id)


@dataclass(frozen=True, slots=True)
class CachedEvent:
    frame: str  # the encoded frame, sent as is to a new subscriber
    event: str
    data: str
    ttl: int  # seconds left


# Seconds of per-second connection counts kept per app (note_connections / connection_history).
CONNECTION_HISTORY_SECONDS = 300


# The pseudo presence channel of signed-in users (watchlist events): user_online/user_offline
# keep its members with add_member/remove_member; '#' keeps every client and API call off it.
ONLINE_CHANNEL = "#online"


class ClusterState(Protocol):
    node_id: str
    # Names the store of the usage buckets: the same for every process sharing it, and new
    # whenever the buckets start again from zero (so persisted rollups never mix two runs).
    usage_source: str

    async def start(self) -> None:
        """Open connections and start the heartbeat that keeps this node's entries alive."""

    async def stop(self) -> None:
        """Remove this node's entries and close connections (graceful shutdown)."""

    # --- subscriptions ---
    async def add_subscription(self, app_id: int, channel: str, socket_id: str) -> int:
        """Count a socket's subscription; returns the cluster-wide count after it."""

    async def remove_subscription(self, app_id: int, channel: str, socket_id: str) -> int:
        """Uncount it; returns the cluster-wide count after it (0 = channel vacated)."""

    async def subscription_count(self, app_id: int, channel: str) -> int:
        """Sockets subscribed to the channel across all live processes."""

    async def channels(self, app_id: int, prefix: str = "") -> dict[str, int]:
        """Occupied channels of an app whose name starts with ``prefix`` -> subscription count."""

    # --- presence ---
    async def add_member(self, app_id: int, channel: str, socket_id: str, member: Member) -> bool:
        """Record a socket of ``member`` in a presence channel; True if it is the user's first.

        Must be atomic across processes: of two sockets of one user joining at once on two
        processes, exactly one gets True (so member_added is sent exactly once).
        """

    async def remove_member(self, app_id: int, channel: str, socket_id: str, user: str) -> bool:
        """Forget a socket of user ``user``; True if it was the user's last one in the channel."""

    async def members(self, app_id: int, channel: str) -> dict[str, Member]:
        """Unique users present in the channel: user key -> Member."""

    async def reap_departed(self) -> list[tuple[int, str, Member]]:
        """(app id, channel, member) of users who left with a process that died or stopped.

        Each is returned to one caller only, which announces member_removed for it.
        """

    # --- signed-in users (watchlist events) ---
    async def user_online(self, app_id: int, socket_id: str, user_id: str) -> bool:
        """A socket signed in as ``user_id``; True if it is the user's first connection cluster-wide.

        Atomic across processes, as add_member (it is add_member on ONLINE_CHANNEL); a process
        that dies takes its users with it: reap_departed returns them with ONLINE_CHANNEL."""

    async def user_offline(self, app_id: int, socket_id: str, user_id: str) -> bool:
        """That socket is no longer signed in; True if it was the user's last connection."""

    async def users_online(self, app_id: int, user_ids: list[str]) -> set[str]:
        """Which of ``user_ids`` are signed in somewhere (on a live process)."""

    # --- held-back webhooks (channel_vacated / member_removed) ---
    async def hold_webhook(self, app_id: int, key: str, ttl: float) -> str:
        """Mark a leave webhook (``key``) as held back, for at most ``ttl`` seconds; returns the
        hold's token (a later hold of the same key replaces it, with a new token)."""

    async def release_webhook(self, app_id: int, key: str, token: str | None = None) -> bool:
        """Remove the mark (with ``token``: only if it is still that hold); True if it was removed.
        Of concurrent callers exactly one gets True."""

    # --- connections ---
    async def connections_changed(self, app_id: int, sockets: int, tabs: int) -> None:
        """Add deltas to this node's count of physical sockets and logical tabs for an app."""

    async def connection_counts(self, app_id: int) -> tuple[int, int]:
        """(physical sockets, logical tabs) of an app across all live processes."""

    # --- cache channels ---
    async def cache_set(self, app_id: int, channel: str, event: CachedEvent) -> None:
        """Keep the last event of a cache channel for ``event.ttl`` seconds."""

    async def cache_get(self, app_id: int, channel: str) -> CachedEvent | None:
        """The last event of a cache channel, with its remaining ttl, or None."""

    # --- traffic ---
    async def add_traffic(self, app_id: int, messages: int, deliveries: int, bytes_sent: int,
                          logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                          resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0) -> None:
        """Add to an app's running totals of published messages, delivered frames and bytes.

        ``logical_*``: the frames and bytes one socket per tab would have needed (metering).
        ``resumes_*``, ``stored_*``: recovery's counters (TRAFFIC_FIELDS).
        """

    async def traffic_totals(self, app_id: int) -> dict[str, int]:
        """Running totals since the state was created: every TRAFFIC_FIELDS counter ("messages",
        "deliveries", "bytes", "logical_deliveries", "logical_bytes", "resumes_recovered", ...)."""

    # --- metering buckets (hourly; the dashboard and billing persist them) ---
    async def add_usage(self, app_id: int, hour: int, messages: int, deliveries: int, bytes_sent: int,
                        logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                        resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0,
                        tab_seconds: float = 0.0) -> None:
        """Add counts to the usage bucket of ``hour`` (unix time // 3600). Atomic across processes.

        ``tab_seconds``: logical tabs connected to this process times the seconds they were.
        """

    async def add_metering(self, app_id: int, hour: int, messages: int, deliveries: int, bytes_sent: int,
                           logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                           resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0,
                           tab_seconds: float = 0.0, seq: int = 0) -> bool:
        """``add_traffic`` and ``add_usage`` of one metering flush, all or nothing (the node's flush uses this).

        ``seq`` (> 0) numbers this process's flushes, increasing: a flush whose seq was already
        applied is skipped, so retrying a flush whose outcome is unknown (the reply was lost)
        never counts it twice. Returns False if it was skipped.
        """

    async def note_peaks(self, app_id: int, hour: int, sockets: int, tabs: int) -> None:
        """Raise the bucket's peak physical sockets / logical tabs to at least these values."""

    async def note_connections(self, app_id: int, second: int, sockets: int, tabs: int) -> None:
        """Record the app's cluster-wide counts at a whole second (the dashboard's 5-minute chart).

        A ring of CONNECTION_HISTORY_SECONDS slots per app: every process may write the same
        second (the same cluster-wide counts); the last write wins."""

    async def connection_history(self, app_id: int, since: int) -> list[tuple[int, int, int]]:
        """(second, sockets, tabs) recorded from ``since`` on, oldest first (at most the ring's length)."""

    async def usage(self, app_id: int, since_hour: int) -> list[dict[str, int]]:
        """Buckets from ``since_hour`` on, oldest first: {"hour", every TRAFFIC_FIELDS counter,
        "tab_seconds", "peak_sockets", "peak_tabs"}.
        Buckets are kept at least 48 hours."""
