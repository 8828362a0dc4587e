"""channels_redis' pub/sub layer, with the publishes of a process pipelined to Redis.

``RedisPubSubChannelLayer.group_send`` sends one PUBLISH per call under a per-shard lock and
holds the lock until Redis answers: every publish pays its own write, its own read of the
reply, its own wake-up of the waiting task and its own command read in Redis. With signed
HTTP publishes on Redis that was 372 µs of CPU per publish (server and redis-server together)
and 2,923 publishes/s per process (bench/RESULTS.md), against ~75 µs without Redis.

Here ``group_send`` joins a batch per shard instead. The batch goes out as one pipeline when the
shard's connection is free, so every publish that arrived while the previous pipeline was in
flight shares the next round trip. Each caller still awaits its own PUBLISH and gets its error
(an unreachable Redis still fails the HTTP publish with 503), and publishes keep their order:
one batch after another, in arrival order within a batch. Everything else (groups,
subscriptions, receiving, reconnects) is channels_redis' own code. Measured the same way:
142–291 µs per publish and 3,500–7,200 publishes/s per process.

Two more changes for Redis blips. ``group_send`` returns PUBLISH's reply, the number of
Redis subscribers that got the message (the broker checks it for groups it has joined itself).
And each shard's receive loop, which drives the subscriber connection's reconnects (redis-py
resubscribes its channels on reconnect), retries every ``RECONNECT_DELAY`` instead of every
second and tells ``on_connection_lost`` listeners instead of logging a traceback each time:
channels_redis' own ``on_disconnect``/``on_reconnect`` hooks are never called
(channels_redis#406), so without this nothing learns that subscriptions were lost.
"""

import asyncio
import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, decode_hosts

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from . import metrics, streams
from .outage import ConnectionLostListeners, is_backend_failure
from .publish_batches import PublishBatches
from .streams import HistoryPage, Position, Stream

log = logging.getLogger(__name__)

RECONNECT_DELAY = 0.1  # seconds between attempts of the subscriber connection to reach Redis again


class PipelinedPubSubChannelLayer(ConnectionLostListeners, RedisPubSubChannelLayer):
    def _get_layer(self):
        # As the base class does (one layer per event loop, closed with its loop), but with
        # the pipelining layer.
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _PipelinedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer


class _PipelinedLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts=None, *args, **kwargs):
        super().__init__(hosts, *args, **kwargs)
        self._shards = [_Shard(host, self) for host in decode_hosts(hosts)]
        self._publishes = PublishBatches(self._send_batch, self.channel_layer.serialize, self.prefix)  # per shard
        self._read_scripts: dict[object, object] = {}  # shard -> its registered streams.READ

    async def group_send(self, group, message, stream: Stream | None = None):
        """PUBLISH the message in the shard's next pipeline; returns how many processes got it.

        With ``stream`` it is streams.APPEND_AND_PUBLISH instead: the frame is recorded in the
        channel's history and published with its position, in one script (streams.py)."""
        group_channel = self._get_group_channel_name(group)
        done = self._publishes.join(asyncio.get_running_loop(), self._get_shard(group_channel), group, group_channel,
                                    message, stream)
        return await done  # PUBLISH's reply: how many Redis subscribers (processes) got it

    async def subscribers(self, group) -> int:
        """How many Redis clients (processes) are subscribed to the group: PUBSUB NUMSUB."""
        group_channel = self._get_group_channel_name(group)
        shard = self._get_shard(group_channel)
        shard._ensure_redis()  # noqa: SLF001
        [(_, count)] = await shard._redis.pubsub_numsub(group_channel)  # noqa: SLF001
        return int(count)

    def is_subscribed(self, group) -> bool:
        """Whether Redis confirmed this process's subscription to the group (on the current connection)."""
        group_channel = self._get_group_channel_name(group)
        return group_channel in self._get_shard(group_channel).confirmed

    async def _send_batch(self, shard) -> None:
        """The shard's sender (publish_batches.py): its batch in one round trip, once the shard is free."""
        publishes = self._publishes
        batch = None
        try:
            async with shard._lock:  # noqa: SLF001 - the lock channels_redis serializes a shard's commands with
                batch = publishes.take(shard)
                shard._ensure_redis()  # noqa: SLF001
                redis = shard._redis  # noqa: SLF001
                with metrics.timed_redis("publish"):
                    receivers = await publishes.execute(redis, batch)
                    if any(isinstance(reply, NoScriptError) for reply in receivers):  # Redis restarted
                        receivers = await publishes.retry_lost_scripts(redis, batch, receivers)
        except BaseException as exc:
            publishes.fail(shard, batch, exc)
            if not isinstance(exc, Exception):
                raise  # cancelled: the loop is closing
            return
        publishes.settle(batch, receivers)

    async def read_stream(self, group: str, since: Position | None, limit: int) -> HistoryPage:
        """streams.READ on the shard that carries the group (one round trip)."""
        shard = self._get_shard(self._get_group_channel_name(group))
        shard._ensure_redis()  # noqa: SLF001
        script = self._read_scripts.get(shard)
        if script is None or script.registered_client is not shard._redis:  # noqa: SLF001 - a new client after a reconnect
            script = self._read_scripts[shard] = shard._redis.register_script(streams.READ)  # noqa: SLF001
        args = [*(("", 0) if since is None else (since.epoch, since.offset)), limit, streams.META_TTL * 1000]
        keys = streams.redis_keys(self.prefix, group)
        with metrics.timed_redis("history"):
            try:
                reply = await script(keys=keys, args=args)
            except RedisConnectionError:
                # After a Redis restart the pool's idle connections are dead: the first command on
                # each fails. The read is safe to repeat, on a fresh connection.
                reply = await script(keys=keys, args=args)
        return streams.page_from_reply(reply)


class _Shard(RedisSingleShardConnection):
    """channels_redis' shard connection with a quiet receive loop that reconnects fast.

    It also keeps ``confirmed``: the channels Redis confirmed subscribing on the current
    subscriber connection (emptied when the connection fails, refilled by redis-py's
    resubscription after it reconnects).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.confirmed: set[str] = set()

    async def _do_receiving(self):
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    # Reading also reconnects (and resubscribes) after the connection failed.
                    message = await self._pubsub.get_message(timeout=0.1)
                    if message is not None and message["type"] in _SUBSCRIPTION_REPLIES:
                        self._confirm(message)
                    else:
                        self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, asyncio.TimeoutError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - keep receiving
                metrics.REDIS_ERRORS.labels("pubsub").inc()
                metrics.REDIS_RECONNECTS.labels("pubsub").inc()  # the next read reconnects and resubscribes
                self.confirmed.clear()
                if not is_backend_failure(exc):
                    log.exception("unexpected error in the pub/sub receive loop")
                self.channel_layer.channel_layer._connection_lost(exc)  # noqa: SLF001
                await asyncio.sleep(RECONNECT_DELAY)

    def _confirm(self, message: dict) -> None:
        name = message["channel"]
        name = name.decode() if isinstance(name, bytes) else name
        if message["type"] == "subscribe":
            self.confirmed.add(name)
        else:
            self.confirmed.discard(name)


_SUBSCRIPTION_REPLIES = ("subscribe", "unsubscribe", "psubscribe", "punsubscribe")
