"""Fan-out over a Redis Cluster: sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis >= 7).

channels_redis does not support Redis Cluster (django/channels_redis#420): its pub/sub layer
has no cluster client and plain PUBLISH in a cluster is broadcast to every node. This layer has
the surface ``broker.py`` uses of ``redis_layer.PipelinedPubSubChannelLayer`` (``new_channel``,
``receive``, ``group_add``, ``group_discard``, ``group_send`` returning the receiver count,
``subscribers``, ``is_subscribed``, ``on_connection_lost``, ``read_stream``) on a cluster:

* **Group channels carry a hash tag**: a group's channel is ``<prefix>__group__{<group>}``
  (:func:`shard_channel`), so it belongs to one slot and SSUBSCRIBE/SPUBLISH reach one shard:
  a publish costs one shard one command, whatever the number of shards. The tag is the group
  name, as in the keys of the group's stream (``streams.redis_keys``): the publish-with-history
  script (``streams.APPEND_AND_PUBLISH``, given ``SPUBLISH`` and this channel) touches one slot.
  Groups are per (app, channel) (``channel_names.group_name``), so one app's channels spread
  over the shards.
* **One link per master**: a plain client (publishes, ``PUBSUB SHARDNUMSUB``) and, once this
  process joins a group there, one subscriber connection, read by its own task. A publish
  goes straight to the master of the channel's slot (slot map of redis-py's ``RedisCluster``,
  cached per channel) in that master's next pipeline: publishes that arrive while a pipeline is
  in flight share the next round trip, as on one Redis (``publish_batches.py``, shared with
  ``redis_layer.py``).
* **MOVED / ASK / resharding**: a reply MOVED or ASK (the slot moved, or is moving) is sent
  again through ``RedisCluster``, which follows the redirection, and the slot map is refreshed.
  When a master hands a slot over, Redis unsubscribes its shard channels there (a
  ``sunsubscribe`` this process did not ask for): the layer subscribes them again on the
  slot's new master.
* **Failover**: when a subscriber connection fails (the master died), its channels are
  re-subscribed on whatever master serves their slots once the cluster has promoted a replica
  (the slot map is refreshed at most every ``REFRESH_INTERVAL`` meanwhile), and the
  ``on_connection_lost`` listeners are told at once, so the broker answers 503 until delivery
  works again (broker.py). Publishes to the dead master fail at once (503) and refresh the map.
* **Order** holds per group (one shard, one connection); groups on different shards may
  arrive in either order relative to each other.
* ``group_add`` returns once the shard confirmed the subscription (within
  ``SUBSCRIBE_TIMEOUT``, else it raises): a join that returns is in place.
* **Peers on every shard**: the broker counts the processes subscribed to its control group
  (``subscribers(CONTROL_GROUP)``) before it accepts publishes again after an outage, so that
  a publish answered 200 also reaches the other processes' sockets. On one Redis one channel
  tells; on a cluster a process may be back on one shard and not yet on another. So a process
  that joins the control group also subscribes a *beacon* channel on every master (a channel
  whose slot that master serves, the same for every process), and subscribes it on a master
  only after every other channel it wants there: ``subscribers(CONTROL_GROUP)`` is the fewest
  processes subscribed to any master's beacon. Every process thus also holds a subscriber
  connection to every master, and learns at once that one failed.

The single-Redis path (``redis_layer.py``) is untouched: on one Redis, or with Sentinel,
channels_redis' pub/sub layer with pipelined PUBLISH stays the fast path.
"""

import asyncio
import collections
import logging
import math
import uuid

from channels.layers import BaseChannelLayer
from channels_redis.serializers import registry
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AskError, MovedError, NoScriptError, RedisClusterException, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError

from redis.crc import key_slot

from . import metrics, redis_connect, streams
from .channel_names import CONTROL_GROUP
from .outage import ConnectionLostListeners, is_backend_failure
from .publish_batches import APPEND_AND_PUBLISH_SHA, PublishBatches
from .streams import HistoryPage, Position, Stream

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT = 3.0  # seconds a shard has to confirm an SSUBSCRIBE before group_add gives up
REFRESH_INTERVAL = 0.25  # seconds between refreshes of the slot map while something fails
REROUTE_DELAY = 0.1  # seconds between attempts to subscribe channels whose master went away
LINK_CACHE_SIZE = 100_000  # shard channels whose master is remembered (slot map lookups cached)
_REDIRECTED = (MovedError, AskError, TryAgainError)


def shard_channel(prefix: str, group: str) -> str:
    """The sharded pub/sub channel of a group: hash tag = the group name (as its stream keys)."""
    return f"{prefix}__group__{{{group}}}"


class ClusterChannelLayer(ConnectionLostListeners, BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(self, url: str | None = None, prefix: str = "asgi", expiry: int = 60, capacity: int = 100,
                 serializer_format: str = "msgpack", symmetric_encryption_keys=None, **connection_options):
        super().__init__(expiry=expiry, capacity=capacity)
        self.target = redis_connect.parse_url(url or "")
        if self.target.kind != redis_connect.CLUSTER:
            raise ValueError("ClusterChannelLayer needs a redis+cluster:// URL")
        self.prefix = prefix
        self._serializer = registry.get_serializer(serializer_format,
                                                   symmetric_encryption_keys=symmetric_encryption_keys)
        self._connection_options = connection_options
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- the Channels API ---

    def shard_channel(self, group: str) -> str:
        """The sharded pub/sub channel of ``group`` (hash-tagged by the group name)."""
        return shard_channel(self.prefix, group)

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A channel of this process (local: a publish reaches a process through its groups)."""
        self._bind()
        name = f"{self.prefix}{prefix}{uuid.uuid4().hex}"
        self._channels[name] = asyncio.Queue()
        return name

    async def send(self, channel: str, message: dict) -> None:
        self._bind()
        queue = self._channels.get(channel)
        if queue is None:
            raise NotImplementedError("the cluster layer delivers between processes through groups only")
        queue.put_nowait(self._serializer.serialize(message))

    async def receive(self, channel: str) -> dict:
        self._bind()
        queue = self._channels.get(channel)
        if queue is None:
            queue = self._channels[channel] = asyncio.Queue()
        return self._serializer.deserialize(await queue.get())

    async def group_add(self, group: str, channel: str) -> None:
        """Make ``channel`` (of this process) receive the group; returns once the shard confirmed."""
        self.require_valid_group_name(group)
        self._bind()
        if channel not in self._channels:
            raise RuntimeError("group_add() takes a channel of this process (new_channel())")
        name = self.shard_channel(group)
        self._groups.setdefault(name, set()).add(channel)
        await self._subscribe(name)
        if group == CONTROL_GROUP:
            self._peering = True
            await self._beacons_subscribed()

    async def group_discard(self, group: str, channel: str) -> None:
        self._bind()
        name = self.shard_channel(group)
        members = self._groups.get(name)
        if members is None or channel not in members:
            return
        members.discard(channel)
        if members:
            return
        del self._groups[name]
        if group == CONTROL_GROUP and self._peering:
            self._peering = False
            for beacon in self._beacons.values():
                await self._unsubscribe(beacon)
            self._beacons = {}
        await self._unsubscribe(name)

    async def _unsubscribe(self, name: str) -> None:
        self._unrouted.discard(name)
        link = self._route.pop(name, None)
        if link is not None and link.subscriber is not None:
            await link.subscriber.unsubscribe(name)

    async def group_send(self, group: str, message: dict, stream: Stream | None = None) -> int:
        """SPUBLISH the message on the group's shard (in that master's next pipeline); returns
        how many processes got it. With ``stream``: streams.APPEND_AND_PUBLISH instead (the frame
        is recorded in the group's history and published with its position, one script)."""
        self._bind()
        name = self.shard_channel(group)
        link = self._links_by_channel.get(name) or await self._link_for(name)
        return await self._publishes.join(self._loop, link, group, name, message, stream)

    async def flush(self) -> None:
        """Close every connection and forget every channel and group (as channels_redis' flush)."""
        if self._loop is None:
            return
        # Closing first: a subscriber that fails or is unsubscribed while its link closes must not
        # start re-routing again (a re-router outliving the layer would spin on a closed layer).
        self._closing = True
        self._unrouted.clear()
        self._publishes.cancel()
        for link in list(self._links.values()):
            await link.close()
        await self._cluster.aclose()
        leftovers = [task for task in (self._rerouter, *self._background) if task is not None and not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=1)
        self._loop = None

    close = flush

    # --- what the broker checks (and on_connection_lost: ConnectionLostListeners) ---

    async def subscribers(self, group: str) -> int:
        """How many processes are subscribed to the group (PUBSUB SHARDNUMSUB on its master)."""
        self._bind()
        if group == CONTROL_GROUP and self._peering:
            # The fewest processes subscribed on any master (see "Peers on every shard").
            counts = await asyncio.gather(*(self._count(beacon) for beacon in self._beacons.values()))
            return min(counts, default=0)
        return await self._count(self.shard_channel(group))

    async def _count(self, name: str) -> int:
        for attempt in range(2):
            link = self._links_by_channel.get(name) or await self._link_for(name)
            try:
                [(_, count)] = await link.client.pubsub_shardnumsub(name)
                return int(count)
            except _REDIRECTED:
                if attempt:
                    raise
                await self._refresh(force=True)
        raise AssertionError("unreachable")

    def is_subscribed(self, group: str) -> bool:
        """Whether the group's shard confirmed this process's subscription (on the current connection)."""
        if self._loop is None:
            return False
        name = self.shard_channel(group)
        link = self._route.get(name)
        return link is not None and link.subscriber is not None and name in link.subscriber.confirmed

    async def read_stream(self, group: str, since: Position | None, limit: int) -> HistoryPage:
        """streams.READ on the group's shard (redis-py's cluster client follows MOVED/ASK)."""
        self._bind()
        await self._started()
        args = ("", 0) if since is None else (since.epoch, since.offset)
        with metrics.timed_redis("history"):
            reply = await self._read_script(keys=streams.redis_keys(self.prefix, group),
                                            args=[*args, limit, streams.META_TTL * 1000])
        return streams.page_from_reply(reply)

    # --- internals: state of the running loop ---

    def _bind(self) -> None:
        """Set up this loop's state on first use (a new loop, e.g. in tests, starts afresh)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._cluster = redis_connect.cluster_client(self.target, socket_timeout=5, max_connections=1000)
        self._read_script = self._cluster.register_script(streams.READ)
        self._initialized = False
        self._links: dict[str, _Link] = {}  # master name -> link
        self._links_by_channel: dict[str, _Link] = {}  # shard channel -> its master's link (slot map cache)
        self._channels: dict[str, asyncio.Queue] = {}  # this process's channels -> raw messages
        self._groups: dict[str, set[str]] = {}  # shard channel -> this process's channels in the group
        self._route: dict[str, _Link] = {}  # shard channel -> the link it is subscribed (or subscribing) on
        self._unrouted: set[str] = set()  # wanted shard channels subscribed nowhere (their master went away)
        self._locks: dict[str, asyncio.Lock] = {}  # shard channel -> its subscribe lock
        self._publishes = PublishBatches(self._send_batch, self._serializer.serialize, self.prefix,
                                         sharded=True)  # per link
        self._background: set[asyncio.Task] = set()  # refreshes, closes (see _spawn)
        self._rerouter: asyncio.Task | None = None
        self._closing = False  # flush() has begun: start nothing new
        self._refreshed_at = -math.inf
        self._peering = False  # joined the control group: keep a beacon on every master
        self._beacons: dict[str, str] = {}  # master name -> its beacon channel

    def _wanted(self, name: str) -> bool:
        return name in self._groups or name in self._beacons.values()

    async def _started(self) -> None:
        if not self._initialized:
            try:
                await self._cluster.initialize()
            except RedisClusterException as exc:  # (no startup node answers): Redis is away
                raise RedisConnectionError(f"Redis Cluster unreachable: {exc}") from exc
            self._initialized = True

    async def _link_for(self, name: str) -> "_Link":
        """The link to the master serving the shard channel's slot (per the current slot map)."""
        await self._started()
        try:
            node = self._cluster.get_node_from_key(name)
        except RedisClusterException as exc:  # the slot is served by no master now
            self._refresh_soon()
            raise RedisConnectionError(str(exc)) from exc
        link = self._links.get(node.name)
        if link is None:
            link = self._links[node.name] = _Link(self, node.name, node.host, node.port)
        if len(self._links_by_channel) >= LINK_CACHE_SIZE:
            self._links_by_channel.clear()  # (a cache: bounded however many channels are published)
        self._links_by_channel[name] = link
        return link

    async def _refresh(self, force: bool = False) -> None:
        """Ask the cluster for its slot map again (at most every REFRESH_INTERVAL unless ``force``)."""
        now = self._loop.time()
        if not force and now - self._refreshed_at < REFRESH_INTERVAL:
            return
        self._refreshed_at = now
        await self._started()
        try:
            await self._cluster.nodes_manager.initialize()
        except RedisClusterException as exc:
            raise RedisConnectionError(f"Redis Cluster unreachable: {exc}") from exc
        self._links_by_channel.clear()
        if self._peering:
            self._beacons_moved()
        masters = {node.name for node in self._cluster.get_primaries()}
        for name, link in list(self._links.items()):
            if name not in masters and link.subscriber is None and link not in self._publishes.waiting \
                    and not link.lock.locked():
                del self._links[name]
                self._spawn(link.close())

    def _refresh_soon(self) -> None:
        async def refresh() -> None:
            try:
                await self._refresh()
            except Exception:  # noqa: BLE001 - the next failure asks again
                log.debug("slot map refresh failed", exc_info=True)

        self._spawn(refresh())

    def _spawn(self, coro) -> None:
        """Run a coroutine in the background (holding on to its task: asyncio keeps only weak refs)."""
        task = self._loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- subscribing ---

    async def _subscribe(self, name: str) -> None:
        """Subscribe the shard channel on its master (idempotent); raises if that fails."""
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            if not self._wanted(name):
                return  # discarded meanwhile
            link = self._links_by_channel.get(name) or await self._link_for(name)
            current = self._route.get(name)
            if current is link and link.subscriber is not None and name in link.subscriber.confirmed:
                self._unrouted.discard(name)
                return
            if current is not None and current is not link and current.subscriber is not None:
                await current.subscriber.unsubscribe(name)  # (best effort: that master may be gone)
            self._route[name] = link
            try:
                subscriber = await link.subscriber_started()
                await subscriber.subscribe(name)
            except BaseException as exc:
                if self._route.get(name) is link:
                    del self._route[name]
                if self._wanted(name):
                    self._unrouted.add(name)
                if isinstance(exc, _REDIRECTED):
                    await self._refresh(force=True)
                elif isinstance(exc, Exception):
                    self._refresh_soon()
                raise
            self._unrouted.discard(name)
            if not self._wanted(name):  # discarded while subscribing
                self._route.pop(name, None)
                await subscriber.unsubscribe(name)
        if not lock.locked() and not self._wanted(name):
            self._locks.pop(name, None)

    # --- beacons (see "Peers on every shard") ---

    def _beacon_names(self) -> dict[str, str]:
        """Master name -> its beacon: the first ``<prefix>__peers__{i}`` whose slot it serves."""
        slots = self._cluster.nodes_manager.slots_cache
        masters = {node.name for node in self._cluster.get_primaries()}
        beacons: dict[str, str] = {}
        i = 0
        while len(beacons) < len(masters) and i < 100_000:
            name = f"{self.prefix}__peers__{{{i}}}"
            owners = slots.get(key_slot(name.encode()))
            if owners and owners[0].name in masters and owners[0].name not in beacons:
                beacons[owners[0].name] = name
            i += 1
        return beacons

    async def _beacons_subscribed(self) -> None:
        """Subscribe every master's beacon, each after this process's other channels on that master."""
        await self._started()
        self._beacons = self._beacon_names()
        for beacon in self._beacons.values():
            link = self._links_by_channel.get(beacon) or await self._link_for(beacon)
            for name in [n for n in self._unrouted if n not in self._beacons.values()]:
                if (self._links_by_channel.get(name) or await self._link_for(name)) is link:
                    await self._subscribe(name)
            await self._subscribe(beacon)

    def _beacons_moved(self) -> None:
        """After a slot map change: beacons that no longer fit their master are replaced."""
        beacons = self._beacon_names()
        if beacons == self._beacons:
            return
        stale = set(self._beacons.values()) - set(beacons.values())
        self._beacons = beacons
        for name in stale:
            self._spawn(self._unsubscribe(name))
        self._unrouted.update(name for name in beacons.values() if name not in self._route)
        self._reroute()

    def _delivered(self, name: str, data: bytes) -> None:
        for channel in self._groups.get(name, ()):
            queue = self._channels.get(channel)
            if queue is not None:
                queue.put_nowait(data)

    def _subscriber_failed(self, link: "_Link", subscriber: "_Subscriber", exc: BaseException) -> None:
        """A subscriber connection failed: its channels are subscribed nowhere until re-routed."""
        if link.subscriber is subscriber:
            link.subscriber = None
        metrics.REDIS_ERRORS.labels("pubsub").inc()
        metrics.REDIS_RECONNECTS.labels("pubsub").inc()
        if not is_backend_failure(exc):
            log.warning("cluster subscriber connection to %s failed: %r", link.name, exc)
        for name in subscriber.wanted:
            if self._route.get(name) is link:
                del self._route[name]
                if self._wanted(name):
                    self._unrouted.add(name)
        self._links_by_channel.clear()
        self._connection_lost(exc)
        self._reroute()

    def _unsubscribed_by_server(self, link: "_Link", name: str) -> None:
        """The master dropped a shard channel we did not leave (its slot moved): subscribe it again."""
        if self._route.get(name) is link:
            del self._route[name]
            if self._wanted(name):
                self._unrouted.add(name)
                self._links_by_channel.pop(name, None)
                self._reroute()

    def _reroute(self) -> None:
        if self._closing:
            return
        if self._rerouter is None or self._rerouter.done():
            self._rerouter = self._loop.create_task(self._reroute_forever())

    async def _reroute_forever(self) -> None:
        """Subscribe the unrouted channels on their slots' masters, once the cluster has them."""
        while self._unrouted and not self._closing:
            try:
                await self._refresh()
                beacons = set(self._beacons.values())
                # Beacons last: a beacon tells the others this process is back on that master.
                for name in sorted(self._unrouted, key=lambda n: n in beacons):
                    if self._wanted(name):
                        await self._subscribe(name)
                    else:
                        self._unrouted.discard(name)
                if self._unrouted:  # (some came back meanwhile)
                    await asyncio.sleep(REROUTE_DELAY)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a master is still away: try again shortly
                if not is_backend_failure(exc) and not isinstance(exc, (ResponseError, TimeoutError)):
                    log.warning("re-subscribing after a cluster change failed: %r", exc)
                await asyncio.sleep(REROUTE_DELAY)

    # --- publishing ---

    async def _send_batch(self, link: "_Link") -> None:
        """The master's sender (publish_batches.py): its batch as one pipeline, once the link is free."""
        publishes = self._publishes
        batch = None
        try:
            async with link.lock:
                batch = publishes.take(link)
                with metrics.timed_redis("publish"):
                    replies = await publishes.execute(link.client, batch)
                    if any(isinstance(reply, NoScriptError) for reply in replies):  # restarted, or promoted
                        replies = await publishes.retry_lost_scripts(link.client, batch, replies)
                    if any(isinstance(reply, _REDIRECTED) for reply in replies):
                        replies = await self._redirected(batch, replies)
        except BaseException as exc:
            publishes.fail(link, batch, exc)
            if not isinstance(exc, Exception):
                raise  # cancelled: the loop is closing
            self._links_by_channel.clear()
            self._refresh_soon()  # the master may have failed over
            return
        publishes.settle(batch, replies)

    async def _redirected(self, batch: list, replies: list) -> list:
        """Publishes answered MOVED/ASK/TRYAGAIN: send them through redis-py's cluster client,
        which follows the redirection; the slot map is refreshed for the next ones."""
        self._links_by_channel.clear()
        replies = list(replies)
        for i, reply in enumerate(replies):
            if not isinstance(reply, _REDIRECTED):
                continue
            name, payload, _ = batch[i]
            try:
                if isinstance(payload, tuple):
                    replies[i] = await self._cluster.evalsha(APPEND_AND_PUBLISH_SHA, 2, *payload)
                else:
                    replies[i] = await self._cluster.spublish(name, payload)
            except NoScriptError:
                await self._cluster.script_load(streams.APPEND_AND_PUBLISH)
                replies[i] = await self._cluster.evalsha(APPEND_AND_PUBLISH_SHA, 2, *payload)
            except Exception as exc:  # noqa: BLE001 - that publish fails, the others stand
                replies[i] = exc
        return replies


class _Link:
    """What this process holds to one master: a client for commands and a subscriber connection."""

    def __init__(self, layer: ClusterChannelLayer, name: str, host: str, port: int):
        self.layer, self.name, self.host, self.port = layer, name, host, port
        self.client = redis_connect.node_client(host, port, layer.target, socket_timeout=5, max_connections=64)
        self.lock = asyncio.Lock()  # one pipeline of publishes at a time
        self.subscriber: _Subscriber | None = None
        self._starting: asyncio.Future | None = None

    async def subscriber_started(self) -> "_Subscriber":
        """The subscriber connection to this master, connected."""
        if self.subscriber is not None:
            return self.subscriber
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_future()
            try:
                subscriber = _Subscriber(self)
                await subscriber.start()
                self.subscriber = subscriber
                self._starting.set_result(subscriber)
            except BaseException as exc:
                self._starting.set_exception(exc)
                self._starting.exception()  # (retrieved: no "never retrieved" warning)
                raise
            finally:
                self._starting = None
            return subscriber
        return await asyncio.shield(self._starting)

    async def close(self) -> None:
        if self.subscriber is not None:
            await self.subscriber.close()
            self.subscriber = None
        await self.client.aclose()


class _Subscriber:
    """One subscriber connection to a master: SSUBSCRIBE/SUNSUBSCRIBE out, messages and
    confirmations in, read by its own task. A failed connection is not reconnected: the layer
    subscribes its channels again on whatever master serves them now."""

    def __init__(self, link: _Link):
        self.link = link
        target = link.layer.target
        # No retry inside redis-py (it would reconnect without the subscriptions): a failed
        # connection is replaced by the layer.
        self.conn = (SSLConnection if target.ssl else Connection)(
            host=link.host, port=link.port, socket_timeout=None, socket_connect_timeout=redis_connect.CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0), protocol=2, **target.auth())  # RESP2: messages are plain replies
        self.wanted: set[str] = set()  # shard channels subscribed (or being subscribed) here
        self.confirmed: set[str] = set()  # those the master confirmed
        self._replies: collections.deque = collections.deque()  # (command, channel, future) awaiting a reply
        self._task: asyncio.Task | None = None
        self.failed: BaseException | None = None

    async def start(self) -> None:
        await self.conn.connect()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def subscribe(self, name: str) -> None:
        if self.failed is not None:
            raise self.failed
        done = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)
        self.wanted.add(name)
        self._replies.append(("ssubscribe", name, done))
        try:
            await self.conn.send_command("SSUBSCRIBE", name)
            await asyncio.wait_for(asyncio.shield(done), SUBSCRIBE_TIMEOUT)
        except BaseException:
            self.wanted.discard(name)
            raise

    async def unsubscribe(self, name: str) -> None:
        self.wanted.discard(name)
        self.confirmed.discard(name)
        if self.failed is not None:
            return
        self._replies.append(("sunsubscribe", name, None))
        try:
            await self.conn.send_command("SUNSUBSCRIBE", name)
        except Exception as exc:  # noqa: BLE001 - a dead connection unsubscribed everything anyway
            log.debug("SUNSUBSCRIBE on %s failed: %r", self.link.name, exc)

    async def _read(self) -> None:
        layer = self.link.layer
        while True:
            try:
                reply = await self.conn.read_response(timeout=math.inf)
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:  # an error reply: to the oldest command still waiting
                if self._replies:
                    _, name, done = self._replies.popleft()
                    self.wanted.discard(name)
                    if done is not None and not done.done():
                        done.set_exception(exc)
                continue
            except BaseException as exc:  # noqa: BLE001 - the connection is gone
                self._fail(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            kind = reply[0]
            if kind == b"smessage":
                layer._delivered(reply[1].decode(), reply[2])  # noqa: SLF001
            elif kind == b"ssubscribe":
                self._answered("ssubscribe", reply[1].decode())
            elif kind == b"sunsubscribe":
                name = reply[1].decode()
                if not self._answered("sunsubscribe", name):
                    # Not ours: the master no longer serves the channel's slot.
                    self.confirmed.discard(name)
                    self.wanted.discard(name)
                    layer._unsubscribed_by_server(self.link, name)  # noqa: SLF001

    def _answered(self, command: str, name: str) -> bool:
        """Match a confirmation with the command waiting for it; False if none was."""
        for i, (waiting, channel, done) in enumerate(self._replies):
            if waiting == command and channel == name:
                del self._replies[i]
                if command == "ssubscribe":
                    if name in self.wanted:
                        self.confirmed.add(name)
                    if not done.done():
                        done.set_result(None)
                return True
        return False

    def _fail(self, exc: BaseException) -> None:
        self.failed = exc if isinstance(exc, Exception) else ConnectionError(repr(exc))
        self.confirmed.clear()
        while self._replies:
            _, _, done = self._replies.popleft()
            if done is not None and not done.done():
                done.set_exception(self.failed)
        self.link.layer._subscriber_failed(self.link, self, exc)  # noqa: SLF001
        self.link.layer._spawn(self.conn.disconnect())  # noqa: SLF001

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.failed = self.failed or ConnectionError("closed")
        await self.conn.disconnect()


def _retrieve(future: asyncio.Future) -> None:
    """Mark a future's exception as seen (nobody may await it any more: no asyncio warning)."""
    if not future.cancelled():
        future.exception()
