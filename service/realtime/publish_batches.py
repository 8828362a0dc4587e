"""Publishes pipelined per Redis connection: the part the single-Redis layer (``redis_layer.py``)
and the cluster layer (``cluster_layer.py``) share.

A publish joins the batch of its connection (a channels_redis shard, or a cluster master). The
first publish of a batch starts the layer's sender for that connection; the sender takes the
batch once the connection is free and sends it as one pipeline, so every publish that arrived
while the previous pipeline was in flight shares the next round trip. Each publish's future
gets its own reply (how many processes received it) or its own error, and publishes keep their
order: one batch after another, in arrival order within a batch.

A layer keeps what is its own: the connection and its lock, the client the pipeline goes to,
what a failure means for its routing (the cluster's MOVED/ASK, slot map refreshes).

This is the publish fast path: per publish, ``join`` is one plain call doing what the layers
did inline; the sender's helpers are plain calls too (awaiting only when Redis lost its scripts).
"""

import asyncio
import hashlib
from collections.abc import Callable, Coroutine, Hashable

from redis.exceptions import NoScriptError, ResponseError

from . import streams
from .streams import Stream

APPEND_AND_PUBLISH_SHA = hashlib.sha1(streams.APPEND_AND_PUBLISH.encode()).hexdigest()
FIXED_ARGS_CACHE_SIZE = 10_000  # streams whose script arguments are kept encoded


class PublishBatches:
    """The publishes waiting for their connection's next pipeline, and the helpers of its sender.

    ``send(connection)`` is the layer's sender (started once per batch): it takes the batch
    (``take``), sends it with ``execute(client, batch)``, then ``settle``s the batch with the replies,
    or ``fail``s it. ``sharded``: SPUBLISH (Redis Cluster's shard channels) instead of PUBLISH.
    """

    def __init__(self, send: Callable[[Hashable], Coroutine], serialize: Callable[[dict], bytes], prefix: str,
                 sharded: bool = False):
        self.waiting: dict[Hashable, list] = {}  # connection -> [(pub/sub channel, payload, future)]
        self._send = send
        self._serialize = serialize
        self._prefix = prefix
        self._sharded = sharded
        self._publish_command = "SPUBLISH" if sharded else "PUBLISH"
        self._senders: set[asyncio.Task] = set()  # running senders (asyncio keeps only weak refs)
        self._fixed_args: dict[Stream, tuple[bytes, ...]] = {}  # a stream -> its script's fixed arguments

    def join(self, loop: asyncio.AbstractEventLoop, connection: Hashable, group: str, channel: str, message: dict,
             stream: Stream | None) -> asyncio.Future:
        """Queue the publish of ``message`` to ``group`` (pub/sub ``channel``) in the connection's
        next pipeline; the future gets its reply. With ``stream`` the publish is recorded:
        streams.APPEND_AND_PUBLISH keeps the frame in the group's history and publishes it with
        its position, in one script (streams.py)."""
        if stream is None:
            payload = self._serialize(message)
        else:
            fixed = self._fixed_args.get(stream)
            if fixed is None:
                if len(self._fixed_args) >= FIXED_ARGS_CACHE_SIZE:
                    self._fixed_args.clear()  # (a cache: bounded however many channels are published)
                fixed = self._fixed_args[stream] = streams.fixed_args(self._prefix, group, stream,
                                                                      self._publish_command, channel)
            frame = message["frame"]
            payload = (*fixed, frame[:-1],
                       streams.script_message(self._serialize({k: v for k, v in message.items() if k != "frame"})))
        done = loop.create_future()
        batch = self.waiting.get(connection)
        if batch is None:
            batch = self.waiting[connection] = []
            sender = loop.create_task(self._send(connection))
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        batch.append((channel, payload, done))
        return done

    def take(self, connection: Hashable) -> list:
        """The connection's batch, now the sender's: publishes from now on start the next batch.
        Called once the connection is free, so that publishes that came meanwhile ride along."""
        return self.waiting.pop(connection)

    async def execute(self, client, batch: list) -> list:
        """Send the batch on one connection of ``client``'s pool as one write and read a reply per
        publish (the receiver count, or the error: a NOSCRIPT, a MOVED, ...). PUBLISH (SPUBLISH)
        for a plain publish, the history script for a recorded one.

        Straight on the connection rather than through redis-py's pipeline object: a fifth to a
        third less client CPU per round trip (``python -m bench.redis_round_trip``). Never sent again
        after a connection error (Redis may have run it): the batch fails once and its
        publishers decide (the HTTP API answers 503). A connection left mid-reply is dropped.
        """
        commands = [("EVALSHA", APPEND_AND_PUBLISH_SHA, 2, *payload) if isinstance(payload, tuple)
                    else (self._publish_command, channel, payload) for channel, payload, _ in batch]
        pool = client.connection_pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
            replies = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:  # this publish's error; the connection is still in step
                    replies.append(exc)
        except BaseException:
            await connection.disconnect()  # replies may be left unread: never reuse it
            raise
        finally:
            await pool.release(connection)
        return replies

    async def retry_lost_scripts(self, client, batch: list, replies: list) -> list:
        """Redis lost its scripts (it restarted, or a replica was just promoted): load the script
        and run again the recorded publishes it answered NOSCRIPT; returns the batch's replies.

        Only those ran not at all, so none is recorded twice. They now land after the plain
        publishes of their batch: the receiving processes order a channel's recorded messages
        by offset anyway (node.py)."""
        await client.script_load(streams.APPEND_AND_PUBLISH)
        retry = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        replies = list(replies)
        for i, reply in zip(retry, await self.execute(client, [batch[i] for i in retry]), strict=True):
            replies[i] = reply
        return replies

    @staticmethod
    def settle(batch: list, replies: list) -> None:
        """Give each publish of the batch its reply: the receiver count, or its error."""
        for (*_, done), reply in zip(batch, replies, strict=True):
            if not done.done():
                if isinstance(reply, Exception):
                    done.set_exception(reply)
                else:
                    done.set_result(reply)

    def fail(self, connection: Hashable, batch: list | None, exc: BaseException) -> None:
        """The sender failed with ``exc``: each publish of its batch (the one still waiting if
        ``batch`` is None, not taken yet) gets the error, or is cancelled if ``exc`` is not an
        Exception (the sender was cancelled: the loop is closing)."""
        for *_, done in batch if batch is not None else self.waiting.pop(connection, ()):
            if done.done():
                continue
            if isinstance(exc, Exception):
                done.set_exception(exc)
            else:
                done.cancel()

    def cancel(self) -> None:
        """Stop every sender and cancel every waiting publish (the layer is closing)."""
        for sender in list(self._senders):
            sender.cancel()
        for batch in self.waiting.values():
            for *_, done in batch:
                if not done.done():
                    done.cancel()
