"""Cluster state shared by any number of processes through Redis: one server, a Redis Cluster,
or a Sentinel-watched master (``redis_connect.py``).

Each process (node) writes only its *own* entries, into keys named after it, and keeps the
same entries locally (``_owned``, the node's truth). Readers add up the entries of live nodes:
a node is live while its score (expiry time, Redis clock) is ahead in ``<prefix>:{cluster}:nodes``,
and, for one app's entries, in that app's own ``<prefix>:{a}:nodes`` (below).
A heartbeat every ``NODE_TTL / 3`` seconds renews those scores and this node's keys, and
rewrites them all from ``_owned`` when Redis lost any of them or a write failed, so:

* a node killed with -9 drops out of every count and member list within ``NODE_TTL`` (readers
  skip it at once); then a live node claims it in ``reap_departed`` and announces member_removed
  for its users, and its keys expire (they live ``2 * NODE_TTL``, so the reaper still finds them);
* after a Redis restart, outage or failover, counts and presence heal by the next heartbeat;
* while Redis is away, writes of this node's entries do not fail the socket path: they update
  ``_owned`` and the heartbeat publishes them later. Reads (the HTTP API) do fail, at once
  (``StateUnavailable``) once an outage is known. While Redis is away the heartbeat retries
  every ``RECONNECT_INTERVAL``, so its return is noticed within about that long; the outage is
  logged once (``outage.redis_outage``), not per failed call.
* a busy connection pool is not an outage: a caller waits for a pooled connection for as long
  as Redis answers (redis-py raises after the pool's wait timeout; counting that as "Redis is
  away" answered "first socket of this user" and sent member_added twice under load). On a
  cluster, where redis-py raises at once when a node's pool is full, a gate of the same size
  makes callers wait instead (``redis_connect.cluster_client``).
* the metering flush (``add_metering``) writes the running totals and the hourly bucket in one
  script, all or nothing, and skips a retry of a flush that Redis already applied.

Every key holding tenant data contains the app id. Hot paths are one round trip (a Lua
script, in ``redis_scripts.py``, or a pipeline).

Redis Cluster. Every key carries a hash tag: ``{a}`` (the app id) for an app's keys, ``{cluster}``
for the two global ones, and every script is given all the keys it touches, of one tag: each
runs on one slot, so the same code runs on one Redis and on a cluster. The prefix stays outside
the tag, so ``SCAN MATCH <prefix>:*`` still finds a deployment's keys. One app's state lives on
one shard (apps spread over shards; fan-out, the heavy part, spreads by channel: cluster_layer.py).

The node list. Sums and member lists add up *live* nodes' entries, and which nodes are live is
known only in Redis. Reading the global nodes ZSET first and then the app's keys would be two
round trips on every presence change, and not atomic (two nodes adding one user at once could
both be told "first"). Instead each app has its own nodes ZSET, in the app's slot: a node
registers itself there (expiry = its heartbeat's) in the same script that writes its first entry
of the app, and its heartbeat renews it with the keys. A script is given the nodes this process
believes hold entries of the app (``_peers``, cached per app), with their keys; if a live node is
missing, the script fails before writing anything and returns the live list, and the call is made
again with it (``_live_call``): one round trip as long as no process joins the app, two when one
does. The global ZSET still decides who is dead for ``reap_departed`` and tells a node that Redis
lost it (the heartbeat then rewrites its entries).

Key layout (``p`` = prefix, ``a`` = app id, ``n`` = node id):
  p:{cluster}:nodes         ZSET  node -> expiry (ms): every live node
  p:{cluster}:usage_source  STRING id of this Redis's usage history (new after a data loss)
  p:{a}:nodes               ZSET  node -> expiry (ms): the nodes with entries of this app
  p:{a}:subs:n              HASH  channel -> this node's sockets subscribed
  p:{a}:conns:n             HASH  sockets, tabs of this node
  p:{a}:members:n:channel   HASH  user key -> [user_id, user_info] (this node's users)
  p:{a}:cache:channel       STRING the cached event (PX = its ttl)
  p:{a}:traffic             HASH  running totals
  p:{a}:usage:hour          HASH  one hourly bucket;  p:{a}:usage  ZSET of bucket hours
  p:{a}:metered:n           STRING seq of this node's last metering flush applied (expires after an hour)
  p:{a}:members:n:#online   HASH  the signed-in users of this node (watchlist events; ONLINE_CHANNEL)
  p:{a}:held:<key>          STRING a held-back leave webhook (expires on its own)
  p:{a}:connhist            HASH  the per-second connection counts (a ring)
"""

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from typing import Any

import orjson
from django.conf import settings
from redis import asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import metrics, redis_connect
from ..outage import redis_outage
from . import redis_scripts as scripts
from .base import CONNECTION_HISTORY_SECONDS, ONLINE_CHANNEL, TRAFFIC_FIELDS, CachedEvent, ClusterState, Member

log = logging.getLogger(__name__)

USAGE_KEEP_SECONDS = 72 * 3600  # a bucket lives this long after its last write (contract: >= 48 h)
POOL_SIZE = 64  # default of TABCAST["REDIS_POOL_SIZE"]: callers beyond this wait for a connection
POOL_WAIT = 1.0  # seconds between checks, while waiting for a pooled connection, that Redis still answers
RECONNECT_INTERVAL = 0.25  # seconds between heartbeats while Redis is unreachable
RECONNECT_TIMEOUT = 1.0  # a heartbeat while Redis is unreachable gives up after this long (Redis frozen)
LIVE_ATTEMPTS = 5  # a script told of undeclared live nodes is run again with them, at most this often
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_STALE_NODES = "TCNODES"  # the error a LIVE script answers when a live node was not declared


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


class _WaitingSentinelPool(SentinelConnectionPool, _WaitingPool):
    """The waiting pool whose connections go to the master the Sentinels name (asked again on
    every new connection, so after a failover the next connection reaches the new master)."""


def _stale_nodes(exc: ResponseError) -> tuple[str, ...] | None:
    """The live node list of a LIVE script's TCNODES answer, or None for any other error."""
    text = str(exc)
    if not text.startswith(_STALE_NODES):
        return None
    return tuple(node for node in text[len(_STALE_NODES):].strip().split(",") if node)


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
        self.target = redis_connect.parse_url(url or settings.REDIS_URL)
        self.cluster = self.target.kind == redis_connect.CLUSTER
        if self.cluster:
            # Each node's pool holds a few more than the gate lets through: redis-py's topology
            # refreshes take connections of their own.
            self.redis = redis_connect.cluster_client(self.target, gate=pool_size, max_connections=pool_size + 8,
                                                      socket_timeout=5, socket_connect_timeout=2)
        else:
            options = {"max_connections": pool_size, "timeout": POOL_WAIT, "socket_timeout": 5,
                       "socket_connect_timeout": 2, "health_check_interval": 30}
            if self.target.kind == redis_connect.SENTINEL:
                pool = _WaitingSentinelPool(self.target.master, redis_connect.sentinel_manager(self.target),
                                            db=self.target.db, ssl=self.target.ssl, **self.target.auth(), **options)
            else:
                pool = _WaitingPool.from_url(self.target.url, **options)
            pool.reachable = lambda: self._reachable
            self.redis = aioredis.Redis(connection_pool=pool)
        self._nodes_key = f"{prefix}:{{cluster}}:nodes"
        self._source_key = f"{prefix}:{{cluster}}:usage_source"
        self._scripts = {name: self.redis.register_script(getattr(scripts, name.upper())) for name in (  # redis_scripts.py
            "set_and_sum", "channels", "add_member", "remove_member", "members", "users_present", "bucket",
            "heartbeat", "claim_dead", "meter", "reap_members", "renew", "rewrite", "release_held")}
        # This node's truth: the Redis hashes it owns, as they should be (key -> field -> value),
        # and the sockets behind each count, so adds and removes are idempotent per socket.
        self._owned: dict[str, dict[str, str]] = {}
        self._sockets: dict[tuple, set[str]] = {}
        self._written: set[str] = set()  # keys this node may have in Redis (deleted if no longer owned)
        self._key_app: dict[str, int] = {}  # key this node owns or wrote -> its app
        self._peers: dict[int, tuple[str, ...]] = {}  # app -> other nodes believed to hold entries of it
        self._stale = False  # a write failed: Redis may differ from _owned until the next rewrite
        self._changes = 0  # counts changes of _owned (a rewrite that raced one is done again)
        self._entry_writes: dict[tuple, list] = {}  # entry -> [lock, writers]: see _in_order
        self._heartbeat_task: asyncio.Task | None = None
        self._beat_at: float | None = None  # loop time the last successful heartbeat was sent
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
            pipe = self._pipeline(atomic=True)
            pipe.zadd(self._nodes_key, {self.node_id: 0})  # expired: readers skip it, a reaper claims it
            for app_id in {self._key_app[key] for key in self._owned.keys() | self._written if key in self._key_app}:
                pipe.zadd(self._app_nodes_key(app_id), {self.node_id: 0})
            for key in self._owned.keys() | self._written:
                if ":members:" not in key:
                    pipe.delete(key)
            await pipe.execute()
        except UNREACHABLE:
            log.warning("Redis unreachable at shutdown; readers skip this node within %d ms", self.ttl_ms)
        await self.redis.aclose()

    def _pipeline(self, atomic: bool = False):
        """A pipeline; ``atomic``: MULTI/EXEC on one Redis (a cluster pipeline spans slots, so it is not)."""
        return self.redis.pipeline(transaction=atomic and not self.cluster)

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
                        # Idle pooled connections may be to a Redis that died (or, with Sentinel,
                        # to the old master): start afresh. redis-py's cluster client drops a
                        # failed node's connections and refreshes its topology by itself.
                        if not self.cluster:
                            await self.redis.connection_pool.disconnect(inuse_connections=False)
                        await self._heartbeat()
            except (*UNREACHABLE, TimeoutError) as exc:
                self._unreachable(exc)
            except Exception:  # noqa: BLE001 - keep beating; the next round retries
                log.exception("state heartbeat failed")

    async def _heartbeat(self) -> None:
        """Renew this node and its keys; rewrite them all if Redis lost any (restart, outage)."""
        stale, self._stale = self._stale, False
        sent_at = asyncio.get_running_loop().time()
        try:
            unknown, source = await self._scripts["heartbeat"](
                keys=[self._nodes_key, self._source_key], args=[self.node_id, self.ttl_ms, uuid.uuid4().hex])
            self._beat_at = sent_at
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

    def _life_ms(self) -> int:
        """How long this node stays live from now: what is left of its last heartbeat's TTL."""
        if self._beat_at is None:
            return self.ttl_ms
        left = self.ttl_ms - int((asyncio.get_running_loop().time() - self._beat_at) * 1000)
        return max(left, 1)

    def _owned_by_app(self, keys) -> dict[int, list[str]]:
        by_app: dict[int, list[str]] = defaultdict(list)
        for key in keys:
            by_app[self._key_app[key]].append(key)
        return by_app

    async def _renew(self) -> bool:
        """Extend the life of this node (per app) and of its keys; False if Redis lost one of them.

        A key with a write in flight is left out: it may not exist yet (its first entry is on its
        way), which is not a loss, and that write renews it."""
        life = self._life_ms()
        busy = {entry[0] for entry in self._entry_writes}
        by_app = self._owned_by_app(key for key in self._owned if key not in busy)
        lost = await asyncio.gather(*(
            self._scripts["renew"](keys=[self._app_nodes_key(app_id), *keys], args=[self.node_id, life, self.keys_ttl_ms])
            for app_id, keys in by_app.items()))
        if not self._stale:  # every write since the last rewrite reached Redis
            self._written.intersection_update(self._owned)
            if len(self._key_app) > len(self._written):
                self._key_app = {key: self._key_app[key] for key in self._written}
        return not any(lost)

    async def _rewrite(self) -> None:
        """Replace this node's keys with ``_owned`` (and delete the ones it no longer has): one
        script per app (its keys share the app's slot)."""
        dropped = self._written - self._owned.keys()
        life = self._life_ms()
        changes = self._changes
        calls = []
        for app_id, keys in self._owned_by_app(self._owned.keys() | dropped).items():
            args = [self.node_id, life, self.keys_ttl_ms]
            for key in keys:
                fields = self._owned.get(key, {})
                args.append(len(fields))
                for field, value in fields.items():
                    args += [field, value]
            calls.append(self._scripts["rewrite"](keys=[self._app_nodes_key(app_id), *keys], args=args))
        await asyncio.gather(*calls)
        self._written -= dropped
        if self._changes != changes:
            # An entry changed meanwhile: its own write may have landed before this rewrite and
            # been undone by it. The next heartbeat rewrites again (from the latest entries).
            self._stale = True

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

    async def _live_call(self, run, script: str, app_id: int, node_key, write: bool = False,
                         extra_keys: tuple = (), args: tuple = ()) -> Any:
        """A LIVE script (redis_scripts.py) over the nodes holding entries of the app.

        ``node_key(node)`` is a node's key the script reads; ``run`` is ``_call`` or a
        ``_write_own`` partial. If the script answers that a live node was not declared, it is
        run again with the live list (which is remembered for the next calls)."""
        for _ in range(LIVE_ATTEMPTS):
            nodes = (self.node_id, *self._peers.get(app_id, ()))
            keys = [self._app_nodes_key(app_id), *map(node_key, nodes), *extra_keys]
            argv = [len(nodes), *nodes, self._life_ms() if write else 0, self.keys_ttl_ms, *args]
            try:
                return await run(script, keys, argv)
            except ResponseError as exc:
                live = _stale_nodes(exc)
                if live is None:
                    raise
                self._peers[app_id] = tuple(node for node in live if node != self.node_id)
        raise ResponseError(f"the processes holding entries of app {app_id} kept changing ({LIVE_ATTEMPTS} attempts)")

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
            # (On a cluster redis-py scans every master.)
            async for key in self.redis.scan_iter(match=f"{self.prefix}:{{*}}{marker}*", count=1000):
                tag, channel = key.decode()[len(self.prefix) + 1:].split(marker, 1)
                app = int(tag.strip("{}"))
                flat = await self._live_call(
                    self._call, "reap_members", app, lambda n, app=app, channel=channel: self._member_key(app, n, channel),
                    extra_keys=(key.decode(),), args=(node,))
                departed += [(app, channel, Member(*orjson.loads(flat[i + 1]))) for i in range(0, len(flat), 2)]
        return departed

    # --- this node's entries ---

    def _key(self, app_id: int, *parts: str) -> str:
        """A key of one app: the app id is in every key holding tenant data, as its hash tag."""
        return ":".join((self.prefix, f"{{{int(app_id)}}}", *parts))

    def _app_nodes_key(self, app_id: int) -> str:
        return self._key(app_id, "nodes")

    def _member_key(self, app_id: int, node: str, channel: str) -> str:
        return self._key(app_id, "members", node, channel)

    def _own(self, key: str, field: str, value: str | None, app_id: int) -> None:
        """Set (or with None drop) a field of a hash this node owns, locally."""
        self._changes += 1
        fields = self._owned.setdefault(key, {})
        if value is None:
            fields.pop(field, None)
            if not fields:
                del self._owned[key]
        else:
            fields[field] = value
        self._written.add(key)
        self._key_app[key] = app_id

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

    async def _write_own(self, fallback: Any, script: str, keys: list[str], args: list) -> Any:
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

    def _writing(self, fallback: Any):
        async def run(script: str, keys: list[str], args: list) -> Any:
            return await self._write_own(fallback, script, keys, args)
        return run

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

    def _subs_key(self, app_id: int):
        return lambda node: self._key(app_id, "subs", node)

    async def _set_subscriptions(self, app_id: int, channel: str, local: int) -> int:
        key = self._key(app_id, "subs", self.node_id)
        self._own(key, channel, str(local) if local else None, app_id)
        async with self._in_order((key, channel)):
            local = int(self._owned.get(key, {}).get(channel, 0))  # the latest, when it is our turn
            sums = await self._live_call(self._writing([local]), "set_and_sum", app_id, self._subs_key(app_id),
                                         write=True, args=(1, channel, local))
        return int(sums[0])

    async def subscription_count(self, app_id: int, channel: str) -> int:
        sums = await self._live_call(self._call, "set_and_sum", app_id, self._subs_key(app_id), args=(0, channel, 0))
        return int(sums[0])

    async def channels(self, app_id: int, prefix: str = "") -> dict[str, int]:
        flat = await self._live_call(self._call, "channels", app_id, self._subs_key(app_id), args=(prefix,))
        return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    # --- presence ---

    def _members_of(self, app_id: int, channel: str):
        return lambda node: self._member_key(app_id, node, channel)

    async def add_member(self, app_id: int, channel: str, socket_id: str, member: Member) -> bool:
        _, local = self._track(("member", app_id, channel, member.key), socket_id, add=True)
        if local > 1:
            return False  # this node already has the user: not the first anywhere
        blob = orjson.dumps([member.user_id, member.user_info]).decode()
        mine = self._member_key(app_id, self.node_id, channel)
        self._own(mine, member.key, blob, app_id)
        async with self._in_order((mine, member.key)):
            first = await self._live_call(self._writing(1), "add_member", app_id, self._members_of(app_id, channel),
                                          write=True, args=(member.key, blob))
        return bool(first)

    async def remove_member(self, app_id: int, channel: str, socket_id: str, user: str) -> bool:
        changed, local = self._track(("member", app_id, channel, user), socket_id, add=False)
        if not changed or local:
            return False
        mine = self._member_key(app_id, self.node_id, channel)
        self._own(mine, user, None, app_id)
        async with self._in_order((mine, user)):
            last = await self._live_call(self._writing(1), "remove_member", app_id, self._members_of(app_id, channel),
                                         write=True, args=(user,))
        return bool(last)

    async def members(self, app_id: int, channel: str) -> dict[str, Member]:
        flat = await self._live_call(self._call, "members", app_id, self._members_of(app_id, channel))
        return {flat[i].decode(): Member(*orjson.loads(flat[i + 1])) for i in range(0, len(flat), 2)}

    # --- signed-in users (watchlist events): presence in ONLINE_CHANNEL ---

    async def user_online(self, app_id: int, socket_id: str, user_id: str) -> bool:
        return await self.add_member(app_id, ONLINE_CHANNEL, socket_id, Member(user_id))

    async def user_offline(self, app_id: int, socket_id: str, user_id: str) -> bool:
        return await self.remove_member(app_id, ONLINE_CHANNEL, socket_id, user_id)

    async def users_online(self, app_id: int, user_ids: list[str]) -> set[str]:
        if not user_ids:
            return set()
        found = await self._live_call(self._call, "users_present", app_id, self._members_of(app_id, ONLINE_CHANNEL),
                                      args=tuple(user_ids))
        return {user.decode() for user in found}

    # --- held-back webhooks: p:{a}:held:<key>, one string each, expiring on its own ---

    async def hold_webhook(self, app_id: int, key: str, ttl: float) -> str:
        self._check_reachable()
        token = uuid.uuid4().hex
        try:
            await self.redis.set(self._key(app_id, "held", key), token, px=max(int(ttl * 1000), 1))
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise
        return token

    async def release_webhook(self, app_id: int, key: str, token: str | None = None) -> bool:
        if token is not None:  # only that hold: compare and delete, in one script
            return bool(await self._call("release_held", [self._key(app_id, "held", key)], [token]))
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
            self._own(key, field, str(value) if now_sockets else None, app_id)
        async with self._in_order((key,)):
            mine = self._owned.get(key, {})  # the latest, when it is our turn
            await self._live_call(self._writing(None), "set_and_sum", app_id,
                                  lambda node: self._key(app_id, "conns", node), write=True,
                                  args=(1, "sockets", int(mine.get("sockets", 0)), "tabs", int(mine.get("tabs", 0))))

    async def connection_counts(self, app_id: int) -> tuple[int, int]:
        sockets, tabs = await self._live_call(self._call, "set_and_sum", app_id,
                                              lambda node: self._key(app_id, "conns", node),
                                              args=(0, "sockets", 0, "tabs", 0))
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
        pipe = self.redis.pipeline(transaction=True)  # one key: one slot, a transaction on a cluster too
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
                          logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                          resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0) -> None:
        key = self._key(app_id, "traffic")
        pipe = self.redis.pipeline(transaction=True)
        values = (messages, deliveries, bytes_sent, logical_deliveries, logical_bytes, resumes_recovered,
                  resumes_unrecovered, stored_messages, stored_bytes)
        for field, value in zip(TRAFFIC_FIELDS, values, strict=True):
            if value:
                pipe.hincrby(key, field, value)
        await pipe.execute()

    async def traffic_totals(self, app_id: int) -> dict[str, int]:
        values = await self.redis.hmget(self._key(app_id, "traffic"), TRAFFIC_FIELDS)
        return {field: int(value or 0) for field, value in zip(TRAFFIC_FIELDS, values, strict=True)}

    # --- metering buckets ---

    async def _bucket(self, app_id: int, hour: int, mode: str, fields: dict[str, int | float]) -> None:
        args = [int(hour), USAGE_KEEP_SECONDS, mode]
        for field, value in fields.items():
            # A "." tells the script to add a float (tab_seconds); the others are integers.
            args += [field, f"{value:.6f}" if isinstance(value, float) else int(value)]
        await self._call("bucket", keys=[self._key(app_id, "usage"), self._key(app_id, "usage", str(int(hour)))],
                         args=args)

    async def add_usage(self, app_id: int, hour: int, messages: int, deliveries: int, bytes_sent: int,
                        logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                        resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0,
                        tab_seconds: float = 0.0) -> None:
        values = (messages, deliveries, bytes_sent, logical_deliveries, logical_bytes, resumes_recovered,
                  resumes_unrecovered, stored_messages, stored_bytes)
        await self._bucket(app_id, hour, "add", {**dict(zip(TRAFFIC_FIELDS, values, strict=True)),
                                                 "tab_seconds": float(tab_seconds)})

    async def add_metering(self, app_id: int, hour: int, messages: int, deliveries: int, bytes_sent: int,
                           logical_deliveries: int = 0, logical_bytes: int = 0, resumes_recovered: int = 0,
                           resumes_unrecovered: int = 0, stored_messages: int = 0, stored_bytes: int = 0,
                           tab_seconds: float = 0.0, seq: int = 0) -> bool:
        args = [int(hour), USAGE_KEEP_SECONDS, int(seq)]
        values = (messages, deliveries, bytes_sent, logical_deliveries, logical_bytes, resumes_recovered,
                  resumes_unrecovered, stored_messages, stored_bytes)
        for field, value in zip(TRAFFIC_FIELDS, values, strict=True):
            args += [field, int(value)]
        args += ["tab_seconds", f"{float(tab_seconds):.6f}"]  # the "." makes the script add a float
        applied = await self._call("meter", keys=[self._key(app_id, "usage"), self._key(app_id, "traffic"),
                                                  self._key(app_id, "metered", self.node_id),
                                                  self._key(app_id, "usage", str(int(hour)))], args=args)
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
        # The hours, then their buckets: two round trips (a script would have to name the bucket
        # keys before knowing the hours; every key a script touches is passed in KEYS).
        self._check_reachable()
        try:
            hours = await self.redis.zrangebyscore(self._key(app_id, "usage"), int(since_hour), "+inf")
            pipe = self.redis.pipeline(transaction=False)
            for hour in hours:
                pipe.hgetall(self._key(app_id, "usage", hour.decode()))
            buckets = await pipe.execute() if hours else []
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise
        return [_bucket_dict([part for item in bucket.items() for part in item]) for bucket in buckets if bucket]


def _bucket_dict(flat: list[bytes]) -> dict[str, Any]:
    """A bucket as MemoryState returns it: every field present, tab_seconds a float."""
    stored = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    bucket: dict[str, Any] = {"hour": int(stored["hour"])}
    for field in (*TRAFFIC_FIELDS, "peak_sockets", "peak_tabs"):
        bucket[field] = int(stored.get(field, 0))
    bucket["tab_seconds"] = float(stored.get("tab_seconds", 0.0))
    return bucket


_conforms: type[ClusterState] = RedisState
