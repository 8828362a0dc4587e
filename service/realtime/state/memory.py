"""Cluster state for one process: plain dicts (the embedded default)."""

import time
import uuid
from collections import defaultdict

from .base import CONNECTION_HISTORY_SECONDS, ONLINE_CHANNEL, TRAFFIC_FIELDS, CachedEvent, ClusterState, Member


class MemoryState:
    def __init__(self) -> None:
        self.node_id = uuid.uuid4().hex[:12]
        self.usage_source = f"memory-{self.node_id}"  # buckets die with the process
        self._subs: dict[tuple[int, str], set[str]] = {}
        # (app, channel) -> user key -> (member, set of socket ids)
        self._presence: dict[tuple[int, str], dict[str, tuple[Member, set[str]]]] = {}
        self._conns: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        self._cache: dict[tuple[int, str], tuple[float, CachedEvent]] = {}
        self._traffic: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TRAFFIC_FIELDS, 0))
        self._usage: dict[tuple[int, int], dict[str, int]] = {}
        self._metered: dict[int, int] = {}  # app -> seq of the last metering flush applied
        # app -> second % CONNECTION_HISTORY_SECONDS -> (second, sockets, tabs)
        self._conn_history: dict[int, dict[int, tuple[int, int, int]]] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def add_subscription(self, app_id: int, channel: str, socket_id: str) -> int:
        sockets = self._subs.setdefault((app_id, channel), set())
        sockets.add(socket_id)
        return len(sockets)

    async def remove_subscription(self, app_id: int, channel: str, socket_id: str) -> int:
        sockets = self._subs.get((app_id, channel))
        if sockets is None:
            return 0
        sockets.discard(socket_id)
        if not sockets:
            del self._subs[(app_id, channel)]
            return 0
        return len(sockets)

    async def subscription_count(self, app_id: int, channel: str) -> int:
        return len(self._subs.get((app_id, channel), ()))

    async def channels(self, app_id: int, prefix: str = "") -> dict[str, int]:
        return {ch: len(s) for (a, ch), s in self._subs.items() if a == app_id and ch.startswith(prefix)}

    async def add_member(self, app_id: int, channel: str, socket_id: str, member: Member) -> bool:
        users = self._presence.setdefault((app_id, channel), {})
        entry = users.get(member.key)
        if entry is None:
            users[member.key] = (member, {socket_id})
            return True
        entry[1].add(socket_id)
        return False

    async def remove_member(self, app_id: int, channel: str, socket_id: str, user: str) -> bool:
        users = self._presence.get((app_id, channel))
        if not users or user not in users:
            return False
        sockets = users[user][1]
        sockets.discard(socket_id)
        if sockets:
            return False
        del users[user]
        if not users:
            del self._presence[(app_id, channel)]
        return True

    async def members(self, app_id: int, channel: str) -> dict[str, Member]:
        return {key: member for key, (member, _) in self._presence.get((app_id, channel), {}).items()}

    async def reap_departed(self) -> list[tuple[int, str, Member]]:
        return []  # one process: its members always leave through remove_member

    async def user_online(self, app_id: int, socket_id: str, user_id: str) -> bool:
        return await self.add_member(app_id, ONLINE_CHANNEL, socket_id, Member(user_id))

    async def user_offline(self, app_id: int, socket_id: str, user_id: str) -> bool:
        return await self.remove_member(app_id, ONLINE_CHANNEL, socket_id, user_id)

    async def users_online(self, app_id: int, user_ids: list[str]) -> set[str]:
        users = self._presence.get((app_id, ONLINE_CHANNEL), {})
        return {user for user in user_ids if user in users}

    async def hold_webhook(self, app_id: int, key: str, ttl: float) -> str:
        held = self.__dict__.setdefault("_held", {})  # (app, key) -> (expiry (monotonic), token)
        token = uuid.uuid4().hex
        held[(app_id, key)] = (time.monotonic() + ttl, token)
        return token

    async def release_webhook(self, app_id: int, key: str, token: str | None = None) -> bool:
        held = self.__dict__.get("_held", {})
        expires, holder = held.get((app_id, key), (0.0, None))
        if token is not None and holder != token:
            return False
        held.pop((app_id, key), None)
        return expires > time.monotonic()

    async def connections_changed(self, app_id: int, sockets: int, tabs: int) -> None:
        counts = self._conns[app_id]
        counts[0] += sockets
        counts[1] += tabs
        if counts[0] <= 0:
            del self._conns[app_id]

    async def connection_counts(self, app_id: int) -> tuple[int, int]:
        counts = self._conns.get(app_id)
        return (counts[0], counts[1]) if counts else (0, 0)

    async def cache_set(self, app_id: int, channel: str, event: CachedEvent) -> None:
        self._cache[(app_id, channel)] = (time.monotonic() + event.ttl, event)

    async def cache_get(self, app_id: int, channel: str) -> CachedEvent | None:
        hit = self._cache.get((app_id, channel))
        if hit is None:
            return None
        expires, event = hit
        left = expires - time.monotonic()
        if left <= 0:
            del self._cache[(app_id, channel)]
            return None
        return CachedEvent(event.frame, event.event, event.data, int(left) or 1)

    async def add_traffic(self, app_id: int, messages: int, deliveries: int, bytes_sent: int,
                          logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                          resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0) -> None:
        totals = self._traffic[app_id]
        for field, value in zip(TRAFFIC_FIELDS, (messages, deliveries, bytes_sent, logical_deliveries, logical_bytes,
                                                 resumes_recovered, resumes_unrecovered, stored_messages,
                                                 stored_bytes), strict=True):
            totals[field] += value

    async def traffic_totals(self, app_id: int) -> dict[str, int]:
        return dict(self._traffic.get(app_id) or dict.fromkeys(TRAFFIC_FIELDS, 0))

    def _bucket(self, app_id: int, hour: int) -> dict[str, int]:
        bucket = self._usage.get((app_id, hour))
        if bucket is None:
            bucket = self._usage[(app_id, hour)] = {
                "hour": hour, **dict.fromkeys(TRAFFIC_FIELDS, 0), "tab_seconds": 0.0,
                "peak_sockets": 0, "peak_tabs": 0}
            for old in [k for k in self._usage if k[1] < hour - 48]:
                del self._usage[old]
        return bucket

    async def add_usage(self, app_id: int, hour: int, messages: int, deliveries: int, bytes_sent: int,
                        logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                        resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0,
                        tab_seconds: float = 0.0) -> None:
        bucket = self._bucket(app_id, hour)
        for field, value in zip(TRAFFIC_FIELDS, (messages, deliveries, bytes_sent, logical_deliveries, logical_bytes,
                                                 resumes_recovered, resumes_unrecovered, stored_messages,
                                                 stored_bytes), strict=True):
            bucket[field] += value
        bucket["tab_seconds"] += tab_seconds

    async def add_metering(self, app_id: int, hour: int, messages: int, deliveries: int, bytes_sent: int,
                           logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                           resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0,
                           tab_seconds: float = 0.0, seq: int = 0) -> bool:
        if seq and self._metered.get(app_id, 0) >= seq:
            return False
        if seq:
            self._metered[app_id] = seq
        # One step with no await in it: both writes happen or neither does.
        totals, bucket = self._traffic[app_id], self._bucket(app_id, hour)
        for field, value in zip(TRAFFIC_FIELDS, (messages, deliveries, bytes_sent, logical_deliveries, logical_bytes,
                                                 resumes_recovered, resumes_unrecovered, stored_messages,
                                                 stored_bytes), strict=True):
            totals[field] += value
            bucket[field] += value
        bucket["tab_seconds"] += tab_seconds
        return True

    async def note_peaks(self, app_id: int, hour: int, sockets: int, tabs: int) -> None:
        bucket = self._bucket(app_id, hour)
        bucket["peak_sockets"] = max(bucket["peak_sockets"], sockets)
        bucket["peak_tabs"] = max(bucket["peak_tabs"], tabs)

    async def note_connections(self, app_id: int, second: int, sockets: int, tabs: int) -> None:
        second = int(second)
        self._conn_history.setdefault(app_id, {})[second % CONNECTION_HISTORY_SECONDS] = (second, sockets, tabs)

    async def connection_history(self, app_id: int, since: int) -> list[tuple[int, int, int]]:
        ring = self._conn_history.get(app_id, {})
        return sorted(sample for sample in ring.values() if sample[0] >= since)

    async def usage(self, app_id: int, since_hour: int) -> list[dict[str, int]]:
        return [dict(b) for (a, h), b in sorted(self._usage.items(), key=lambda kv: kv[0][1])
                if a == app_id and h >= since_hour]


_conforms: type[ClusterState] = MemoryState
