"""Cluster state shared by any number of processes through one Redis.

Each process (node) writes only its *own* entries, into keys named after it, and keeps the
same entries locally (``_owned``, the node's truth). Readers add up the entries of live nodes:
a node is live while its score in ``<prefix>:nodes`` (expiry time, Redis clock) is ahead.
A heartbeat every ``NODE_TTL / 3`` seconds renews that score and this node's keys, and
rewrites them all from ``_owned`` when Redis lost any of them or a write failed, so:

* a node killed with -9 drops out of every count and member list within ``NODE_TTL`` (readers
  skip it at once); then a live node claims it in ``reap_departed`` and announces member_removed
  for its users, and its keys expire (they live ``2 * NODE_TTL``, so the reaper still finds them);
* after a Redis restart or outage, counts and presence heal by the next heartbeat;
* while Redis is away, writes of this node's entries do not fail the socket path: they update
  ``_owned`` and the heartbeat publishes them later. Reads (the HTTP API) do fail, at once
  (``StateUnavailable``) once an outage is known. While Redis is away the heartbeat retries
  every ``RECONNECT_INTERVAL``, so its return is noticed within about that long; the outage is
  logged once (``outage.redis_outage``), not per failed call.
* a busy connection pool is not an outage: a caller waits for a pooled connection for as long
  as Redis answers (redis-py raises after the pool's wait timeout; counting that as "Redis is
  away" answered "first socket of this user" and sent member_added twice under load).
* the metering flush (``add_metering``) writes the running totals and the hourly bucket in one
  script, all or nothing, and skips a retry of a flush that Redis already applied.

Every key holding tenant data contains the app id. Hot paths are one round trip (a Lua
script, in ``redis_scripts.py``, or a pipeline). Scripts derive per-node key names from the node list, so this needs
a single Redis (or a Redis Cluster with hash tags, which this does not attempt).

Key layout (``p`` = prefix, ``a`` = app id, ``n`` = node id):
  p:nodes                 ZSET  node -> expiry (ms)
  p:usage_source          STRING id of this Redis's usage history (new after a data loss)
  p:a:subs:n              HASH  channel -> this node's sockets subscribed
  p:a:conns:n             HASH  sockets, tabs of this node
  p:a:members:n:channel   HASH  user key -> [user_id, user_info] (this node's users)
  p:a:cache:channel       STRING the cached event (PX = its ttl)
  p:a:traffic             HASH  running totals
  p:a:usage:hour          HASH  one hourly bucket;  p:a:usage  ZSET of bucket hours
  p:a:metered:n           STRING seq of this node's last metering flush applied (expires after an hour)
  p:a:members:n:#online  HASH  the signed-in users of this node (watchlist events; ONLINE_CHANNEL)
  p:a:held:<key>          STRING a held-back leave webhook (expires on its own)
"""

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import orjson
from django.conf import settings
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import metrics
from ..outage import redis_outage
from . import redis_scripts as scripts
from .base import CONNECTION_HISTORY_SECONDS, ONLINE_CHANNEL, TRAFFIC_FIELDS, CachedEvent, ClusterState, Member

log = logging.getLogger(__name__)

USAGE_KEEP_SECONDS = 72 * 3600  # a bucket lives this long after its last write (contract: >= 48 h)
POOL_SIZE = 64  # default of TABCAST["REDIS_POOL_SIZE"]: callers beyond this wait for a connection
POOL_WAIT = 1.0  # seconds between checks, while waiting for a pooled connection, that Redis still answers
RECONNECT_INTERVAL = 0.25  # seconds between heartbeats while Redis is unreachable
RECONNECT_TIMEOUT = 1.0  # a heartbeat while Redis is unreachable gives up after this long (Redis frozen)
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class StateUnavailable(ConnectionError):
    """Redis is known to be unreachable: reads fail at once instead of waiting for a timeout."""


class _WaitingPool(aioredis.BlockingConnectionPool):
    """Waits for a free connection for as long as Redis answers (``reachable()``), however long.

    redis-py raises ConnectionError("No connection available.") once its wait timeout passes,
    which callers could not tell from Redis being down.
    """

    reachable = staticmethod(lambda: True)

    async def get_connection(self, *args, **kwargs):
        while True:
            try:
                return await super().get_connection(*args, **kwargs)
            except RedisConnectionError as exc:
                busy = isinstance(exc, MaxConnectionsError) or isinstance(exc.__cause__, asyncio.TimeoutError)
                if not busy:
                    raise
                if not self.reachable():
                    raise StateUnavailable("Redis is unreachable (and every pooled connection is stuck)") from None
                # A waiter that times out may have swallowed a release's notify (asyncio.Condition
                # before 3.13): pass it on, or the next in line waits a whole POOL_WAIT for nothing.
                async with self._condition:
                    self._condition.notify()


class RedisState:
    def __init__(self, url: str | None = None, prefix: str | None = None, node_ttl: float | None = None,
                 pool_size: int | None = None) -> None:
        self.node_id = uuid.uuid4().hex[:12]
        self.usage_source = ""
        prefix = prefix or settings.REDIS_PREFIX
        self.prefix = prefix
        ttl = node_ttl if node_ttl is not None else settings.TABCAST["NODE_TTL"]
        self.ttl_ms = max(int(ttl * 1000), 1000)
        # Keys outlive the node's heartbeat so the process that reaps a dead node still finds
        # its members (readers ignore a dead node's keys either way).
        self.keys_ttl_ms = 2 * self.ttl_ms
        pool_size = pool_size or settings.TABCAST.get("REDIS_POOL_SIZE") or POOL_SIZE
        pool = _WaitingPool.from_url(
            url or settings.REDIS_URL, max_connections=pool_size, timeout=POOL_WAIT,
            socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
        pool.reachable = lambda: self._reachable
        self.redis = aioredis.Redis(connection_pool=pool)
        self._nodes_key = f"{prefix}:nodes"
        self._scripts = {name: self.redis.register_script(source) for name, source in (  # redis_scripts.py
            ("set_and_sum", scripts.SET_AND_SUM), ("channels", scripts.CHANNELS),
            ("add_member", scripts.ADD_MEMBER), ("remove_member", scripts.REMOVE_MEMBER),
            ("members", scripts.MEMBERS), ("bucket", scripts.BUCKET), ("usage", scripts.USAGE),
            ("heartbeat", scripts.HEARTBEAT), ("claim_dead", scripts.CLAIM_DEAD), ("meter", scripts.METER),
            ("reap_members", scripts.REAP_MEMBERS))}
        # This node's truth: the Redis hashes it owns, as they should be (key -> field -> value),
        # and the sockets behind each count, so adds and removes are idempotent per socket.
        self._owned: dict[str, dict[str, str]] = {}
        self._sockets: dict[tuple, set[str]] = {}
        self._written: set[str] = set()  # keys this node may have in Redis (deleted if no longer owned)
        self._stale = False  # a write failed: Redis may differ from _owned until the next rewrite
        self._entry_writes: dict[tuple, list] = {}  # entry -> [lock, writers]: see _in_order
        self._heartbeat_task: asyncio.Task | None = None
        self._reachable = True  # False while Redis is known to be away (reads fail at once, writes stay local)
        self._went_away = asyncio.Event()  # wakes the heartbeat to probe for Redis's return

    # --- lifecycle ---

    async def start(self) -> None:
        await self._heartbeat()
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat_forever())
        redis_outage.on_start.append(self._outage_started)

    def _outage_started(self, part: str) -> None:
        """Another part (the broker) lost Redis: probe it from here too, so both see it come back."""
        if part != "state" and self._reachable:
            self._unreachable(f"{part} lost it")

    async def stop(self) -> None:
        """Leave the cluster: counts drop at once; presence is left to another node's reaper,
        which tells the users' channels member_removed unless they are present elsewhere."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None
        with contextlib.suppress(ValueError):
            redis_outage.on_start.remove(self._outage_started)
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.zadd(self._nodes_key, {self.node_id: 0})  # expired: readers skip it, a reaper claims it
            for key in self._owned.keys() | self._written:
                if ":members:" not in key:
                    pipe.delete(key)
            await pipe.execute()
        except UNREACHABLE:
            log.warning("Redis unreachable at shutdown; readers skip this node within %d ms", self.ttl_ms)
        await self.redis.aclose(close_connection_pool=True)

    async def _heartbeat_forever(self) -> None:
        while True:
            if self._reachable:
                with contextlib.suppress(TimeoutError):  # a failure seen elsewhere starts probing at once
                    await asyncio.wait_for(self._went_away.wait(), self.ttl_ms / 3000)
            else:
                await asyncio.sleep(RECONNECT_INTERVAL)
            self._went_away.clear()
            try:
                if self._reachable:
                    await self._heartbeat()
                else:  # probing: a frozen Redis must not hold the next attempt for a socket timeout
                    async with asyncio.timeout(RECONNECT_TIMEOUT):
                        # Idle pooled connections may be to a Redis that died: start afresh.
                        await self.redis.connection_pool.disconnect(inuse_connections=False)
                        await self._heartbeat()
            except (*UNREACHABLE, TimeoutError) as exc:
                self._unreachable(exc)
            except Exception:  # noqa: BLE001 - keep beating; the next round retries
                log.exception("state heartbeat failed")

    async def _heartbeat(self) -> None:
        """Renew this node and its keys; rewrite them all if Redis lost any (restart, outage)."""
        stale, self._stale = self._stale, False
        try:
            unknown, source = await self._scripts["heartbeat"](
                keys=[self._nodes_key, f"{self.prefix}:usage_source"],
                args=[self.node_id, self.ttl_ms, uuid.uuid4().hex])
            self.usage_source = f"redis-{source.decode()}"
            if stale or unknown or not await self._renew():
                await self._rewrite()
                if self._heartbeat_task is not None and self._reachable:  # (after an outage: said by its end)
                    log.warning("rewrote this node's %d entries in Redis", len(self._owned))
        except BaseException:
            self._stale = True
            raise
        if not self._reachable:
            self._reachable = True
            redis_outage.back("state")

    async def _renew(self) -> bool:
        """Extend the life of this node's keys; False if Redis lost one of them."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self._owned:
            pipe.pexpire(key, self.keys_ttl_ms)
        renewed = all(await pipe.execute())
        if not self._stale:  # every write since the last rewrite reached Redis
            self._written.intersection_update(self._owned)
        return renewed

    async def _rewrite(self) -> None:
        """Replace this node's keys with ``_owned`` (and delete the ones it no longer has)."""
        dropped = self._written - self._owned.keys()
        pipe = self.redis.pipeline(transaction=True)
        for key in dropped:
            pipe.delete(key)
        for key, fields in self._owned.items():
            pipe.delete(key)
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, self.keys_ttl_ms)
        await pipe.execute()
        self._written -= dropped

    def _unreachable(self, exc: BaseException | str) -> None:
        """Redis failed: serve local state, fail reads at once, heartbeat fast until it is back."""
        self._stale = True  # the next heartbeat rewrites everything
        self._reachable = False
        self._went_away.set()
        metrics.REDIS_ERRORS.labels("state").inc()
        redis_outage.lost("state", exc)

    def _check_reachable(self) -> None:
        if not self._reachable:
            raise StateUnavailable("Redis is unreachable; retry shortly")

    async def _call(self, script: str, keys: list[str], args: list) -> Any:
        """Run a script reading, or writing shared keys: fails at once while Redis is known to be away."""
        self._check_reachable()
        try:
            with metrics.timed_redis("state"):
                return await self._scripts[script](keys=keys, args=args)
        except StateUnavailable:
            raise
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise

    async def reap_departed(self) -> list[tuple[int, str, Member]]:
        """Members who left with a dead (or stopped) node, each returned to one caller only.

        While Redis is away there is nothing to reap (and nothing to log every second): [].
        """
        if not self._reachable:
            return []
        try:
            return await self._reap_departed()
        except UNREACHABLE as exc:
            self._unreachable(exc)
            return []

    async def _reap_departed(self) -> list[tuple[int, str, Member]]:
        departed = []
        for node in await self._scripts["claim_dead"](keys=[self._nodes_key]):
            node = node.decode()
            if node == self.node_id:
                continue  # this process stalled past its TTL; its next heartbeat rewrites its entries
            marker = f":members:{node}:"
            async for key in self.redis.scan_iter(match=f"{self.prefix}:*{marker}*", count=1000):
                app, channel = key.decode()[len(self.prefix) + 1:].split(marker, 1)
                flat = await self._scripts["reap_members"](
                    keys=[self._nodes_key], args=[self._key(int(app), "members", ""), f":{channel}", node])
                departed += [(int(app), channel, Member(*orjson.loads(flat[i + 1]))) for i in range(0, len(flat), 2)]
        return departed

    # --- this node's entries ---

    def _key(self, app_id: int, *parts: str) -> str:
        """A key of one app: the app id is in every key holding tenant data."""
        return ":".join((self.prefix, str(int(app_id)), *parts))

    def _own(self, key: str, field: str, value: str | None) -> None:
        """Set (or with None drop) a field of a hash this node owns, locally."""
        fields = self._owned.setdefault(key, {})
        if value is None:
            fields.pop(field, None)
            if not fields:
                del self._owned[key]
        else:
            fields[field] = value
        self._written.add(key)

    def _track(self, what: tuple, socket_id: str, add: bool) -> tuple[bool, int]:
        """Add or drop a socket from a local set; (whether it changed, sockets left)."""
        sockets = self._sockets.get(what)
        if add:
            sockets = self._sockets.setdefault(what, set())
            changed = socket_id not in sockets
            sockets.add(socket_id)
        else:
            changed = sockets is not None and socket_id in sockets
            if changed:
                sockets.discard(socket_id)
                if not sockets:
                    del self._sockets[what]
        return changed, len(self._sockets.get(what, ()))

    async def _write_own(self, script: str, fallback: Any, keys: list[str], args: list) -> Any:
        """Run a script writing this node's entries; if Redis is away, ``fallback`` (healed later).

        A busy pool makes this wait (``_WaitingPool``), it never answers ``fallback``.
        """
        if not self._reachable:
            return fallback  # the heartbeat rewrites this node's entries once Redis is back
        try:
            return await self._scripts[script](keys=keys, args=args)
        except UNREACHABLE as exc:
            self._unreachable(exc)
            return fallback

    @contextlib.asynccontextmanager
    async def _in_order(self, entry: tuple):
        """Writes of one entry (a field of a hash this node owns) reach Redis in the order made.

        Concurrent writes go out on different pooled connections and can land swapped. Counts
        are written as absolute values, so a swap left an older count in Redis (a burst of 40
        connects was counted as 20 + 4), and a presence add overtaken by its remove left a
        ghost member. Inside this block the writer sends the entry's latest value.
        """
        slot = self._entry_writes.get(entry)
        if slot is None:
            slot = self._entry_writes[entry] = [asyncio.Lock(), 0]
        slot[1] += 1
        try:
            async with slot[0]:
                yield
        finally:
            slot[1] -= 1
            if not slot[1]:
                del self._entry_writes[entry]

    # --- subscriptions ---

    async def add_subscription(self, app_id: int, channel: str, socket_id: str) -> int:
        _, local = self._track(("subs", app_id, channel), socket_id, add=True)
        return await self._set_subscriptions(app_id, channel, local)

    async def remove_subscription(self, app_id: int, channel: str, socket_id: str) -> int:
        _, local = self._track(("subs", app_id, channel), socket_id, add=False)
        return await self._set_subscriptions(app_id, channel, local)

    async def _set_subscriptions(self, app_id: int, channel: str, local: int) -> int:
        prefix = self._key(app_id, "subs", "")
        key = prefix + self.node_id
        self._own(key, channel, str(local) if local else None)
        async with self._in_order((key, channel)):
            local = int(self._owned.get(key, {}).get(channel, 0))  # the latest, when it is our turn
            sums = await self._write_own("set_and_sum", [local], [self._nodes_key],
                                         [prefix, self.node_id, self.keys_ttl_ms, 1, channel, local])
        return int(sums[0])

    async def subscription_count(self, app_id: int, channel: str) -> int:
        sums = await self._call("set_and_sum", keys=[self._nodes_key],
                                args=[self._key(app_id, "subs", ""), self.node_id, self.ttl_ms, 0, channel, 0])
        return int(sums[0])

    async def channels(self, app_id: int, prefix: str = "") -> dict[str, int]:
        flat = await self._call(
            "channels", keys=[self._nodes_key], args=[self._key(app_id, "subs", ""), self.node_id, prefix])
        return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    # --- presence ---

    def _members_args(self, app_id: int, channel: str) -> list:
        return [self._key(app_id, "members", ""), f":{channel}", self.node_id]

    async def add_member(self, app_id: int, channel: str, socket_id: str, member: Member) -> bool:
        _, local = self._track(("member", app_id, channel, member.key), socket_id, add=True)
        if local > 1:
            return False  # this node already has the user: not the first anywhere
        blob = orjson.dumps([member.user_id, member.user_info]).decode()
        prefix, suffix, me = self._members_args(app_id, channel)
        self._own(prefix + me + suffix, member.key, blob)
        async with self._in_order((prefix + me + suffix, member.key)):
            first = await self._write_own("add_member", 1, [self._nodes_key],
                                          [prefix, suffix, me, member.key, blob, self.keys_ttl_ms])
        return bool(first)

    async def remove_member(self, app_id: int, channel: str, socket_id: str, user: str) -> bool:
        changed, local = self._track(("member", app_id, channel, user), socket_id, add=False)
        if not changed or local:
            return False
        prefix, suffix, me = self._members_args(app_id, channel)
        self._own(prefix + me + suffix, user, None)
        async with self._in_order((prefix + me + suffix, user)):
            last = await self._write_own("remove_member", 1, [self._nodes_key], [prefix, suffix, me, user])
        return bool(last)

    async def members(self, app_id: int, channel: str) -> dict[str, Member]:
        flat = await self._call("members", keys=[self._nodes_key], args=self._members_args(app_id, channel))
        return {flat[i].decode(): Member(*orjson.loads(flat[i + 1])) for i in range(0, len(flat), 2)}

    # --- signed-in users (watchlist events): presence in ONLINE_CHANNEL ---

    async def user_online(self, app_id: int, socket_id: str, user_id: str) -> bool:
        return await self.add_member(app_id, ONLINE_CHANNEL, socket_id, Member(user_id))

    async def user_offline(self, app_id: int, socket_id: str, user_id: str) -> bool:
        return await self.remove_member(app_id, ONLINE_CHANNEL, socket_id, user_id)

    async def users_online(self, app_id: int, user_ids: list[str]) -> set[str]:
        if not user_ids:
            return set()
        if "users_present" not in self._scripts:
            self._scripts["users_present"] = self.redis.register_script(scripts.USERS_PRESENT)
        found = await self._call("users_present", keys=[self._nodes_key],
                                 args=[*self._members_args(app_id, ONLINE_CHANNEL), *user_ids])
        return {user.decode() for user in found}

    # --- held-back webhooks: p:a:held:<key>, one string each, expiring on its own ---

    async def hold_webhook(self, app_id: int, key: str, ttl: float) -> None:
        self._check_reachable()
        try:
            await self.redis.set(self._key(app_id, "held", key), b"1", px=max(int(ttl * 1000), 1))
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise

    async def release_webhook(self, app_id: int, key: str) -> bool:
        self._check_reachable()
        try:
            return bool(await self.redis.delete(self._key(app_id, "held", key)))  # DEL: one caller gets 1
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise

    # --- connections ---

    async def connections_changed(self, app_id: int, sockets: int, tabs: int) -> None:
        key = self._key(app_id, "conns", self.node_id)
        mine = self._owned.get(key, {})
        now_sockets, now_tabs = int(mine.get("sockets", 0)) + sockets, int(mine.get("tabs", 0)) + tabs
        if now_sockets <= 0:
            now_sockets = now_tabs = 0  # as MemoryState: no sockets, no entry
        for field, value in (("sockets", now_sockets), ("tabs", now_tabs)):
            self._own(key, field, str(value) if now_sockets else None)
        async with self._in_order((key,)):
            mine = self._owned.get(key, {})  # the latest, when it is our turn
            await self._write_own("set_and_sum", None, [self._nodes_key], [
                self._key(app_id, "conns", ""), self.node_id, self.keys_ttl_ms, 1,
                "sockets", int(mine.get("sockets", 0)), "tabs", int(mine.get("tabs", 0))])

    async def connection_counts(self, app_id: int) -> tuple[int, int]:
        sockets, tabs = await self._call("set_and_sum", keys=[self._nodes_key], args=[
            self._key(app_id, "conns", ""), self.node_id, self.ttl_ms, 0, "sockets", 0, "tabs", 0])
        return int(sockets), int(tabs)

    # --- cache channels ---

    async def cache_set(self, app_id: int, channel: str, event: CachedEvent) -> None:
        self._check_reachable()
        value = orjson.dumps([event.frame, event.event, event.data])
        try:
            await self.redis.set(self._key(app_id, "cache", channel), value, px=max(int(event.ttl * 1000), 1))
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise

    async def cache_get(self, app_id: int, channel: str) -> CachedEvent | None:
        self._check_reachable()
        pipe = self.redis.pipeline(transaction=True)
        key = self._key(app_id, "cache", channel)
        try:
            value, left_ms = await pipe.get(key).pttl(key).execute()
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise
        if value is None or left_ms <= 0:
            return None
        frame, event, data = orjson.loads(value)
        return CachedEvent(frame, event, data, left_ms // 1000 or 1)

    # --- traffic ---

    async def add_traffic(self, app_id: int, messages: int, deliveries: int, bytes_sent: int,
                          logical_deliveries: int = 0, logical_bytes: int = 0) -> None:
        key = self._key(app_id, "traffic")
        pipe = self.redis.pipeline(transaction=True)
        values = (messages, deliveries, bytes_sent, logical_deliveries, logical_bytes)
        for field, value in zip(TRAFFIC_FIELDS, values, strict=True):
            if value:
                pipe.hincrby(key, field, value)
        await pipe.execute()

    async def traffic_totals(self, app_id: int) -> dict[str, int]:
        values = await self.redis.hmget(self._key(app_id, "traffic"), TRAFFIC_FIELDS)
        return {field: int(value or 0) for field, value in zip(TRAFFIC_FIELDS, values, strict=True)}

    # --- metering buckets ---

    async def _bucket(self, app_id: int, hour: int, mode: str, fields: dict[str, int | float]) -> None:
        args = [self._key(app_id, "usage", ""), int(hour), USAGE_KEEP_SECONDS, mode]
        for field, value in fields.items():
            # A "." tells the script to add a float (tab_seconds); the others are integers.
            args += [field, f"{value:.6f}" if isinstance(value, float) else int(value)]
        await self._call("bucket", keys=[self._key(app_id, "usage")], args=args)

    async def add_usage(self, app_id: int, hour: int, messages: int, deliveries: int, bytes_sent: int,
                        logical_deliveries: int = 0, logical_bytes: int = 0, tab_seconds: float = 0.0) -> None:
        await self._bucket(app_id, hour, "add", {
            "messages": messages, "deliveries": deliveries, "bytes": bytes_sent,
            "logical_deliveries": logical_deliveries, "logical_bytes": logical_bytes,
            "tab_seconds": float(tab_seconds)})

    async def add_metering(self, app_id: int, hour: int, messages: int, deliveries: int, bytes_sent: int,
                           logical_deliveries: int = 0, logical_bytes: int = 0, tab_seconds: float = 0.0,
                           seq: int = 0) -> bool:
        args = [self._key(app_id, "usage", ""), int(hour), USAGE_KEEP_SECONDS, int(seq)]
        for field, value in zip(TRAFFIC_FIELDS, (messages, deliveries, bytes_sent, logical_deliveries, logical_bytes),
                                strict=True):
            args += [field, int(value)]
        args += ["tab_seconds", f"{float(tab_seconds):.6f}"]  # the "." makes the script add a float
        applied = await self._call("meter", keys=[self._key(app_id, "usage"), self._key(app_id, "traffic"),
                                                  self._key(app_id, "metered", self.node_id)], args=args)
        return bool(applied)

    async def note_peaks(self, app_id: int, hour: int, sockets: int, tabs: int) -> None:
        await self._bucket(app_id, hour, "max", {"peak_sockets": sockets, "peak_tabs": tabs})

    # --- per-second connection history (a hash of CONNECTION_HISTORY_SECONDS slots per app) ---

    async def note_connections(self, app_id: int, second: int, sockets: int, tabs: int) -> None:
        self._check_reachable()
        key = self._key(app_id, "connhist")
        second = int(second)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, str(second % CONNECTION_HISTORY_SECONDS), f"{second},{int(sockets)},{int(tabs)}")
        pipe.expire(key, CONNECTION_HISTORY_SECONDS * 2)
        try:
            await pipe.execute()
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise

    async def connection_history(self, app_id: int, since: int) -> list[tuple[int, int, int]]:
        self._check_reachable()
        try:
            ring = await self.redis.hvals(self._key(app_id, "connhist"))
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise
        samples = (tuple(int(part) for part in value.split(b",")) for value in ring)
        return sorted(sample for sample in samples if len(sample) == 3 and sample[0] >= since)

    async def usage(self, app_id: int, since_hour: int) -> list[dict[str, int]]:
        buckets = await self._call(
            "usage", keys=[self._key(app_id, "usage")], args=[self._key(app_id, "usage", ""), int(since_hour)])
        return [_bucket_dict(flat) for flat in buckets]


def _bucket_dict(flat: list[bytes]) -> dict[str, Any]:
    """A bucket as MemoryState returns it: every field present, tab_seconds a float."""
    stored = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    bucket: dict[str, Any] = {"hour": int(stored["hour"])}
    for field in (*TRAFFIC_FIELDS, "peak_sockets", "peak_tabs"):
        bucket[field] = int(stored.get(field, 0))
    bucket["tab_seconds"] = float(stored.get("tab_seconds", 0.0))
    return bucket


_conforms: type[ClusterState] = RedisState
