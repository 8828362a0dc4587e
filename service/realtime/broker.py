"""Carries publishes between processes through Channels groups, one membership per process.

Each process owns one channel-layer channel. It joins the group of an (app, channel) when
its first local socket subscribes and leaves when the last one goes; a publish is one
``group_send`` of the pre-encoded frame, and one pump task per process receives it and
hands it to the node, which fans it out to local sockets. With the in-process layer this is
the embedded default; with channels_redis pub/sub (``redis_layer.py``) a publish is one
Redis PUBLISH, pipelined with the process's other publishes, that reaches exactly the
processes with subscribers.

Delivery health. A publish answered 200 must reach this process's subscribers, so ``send``
refuses (raises ``DeliveryUnavailable``, which the HTTP API answers with 503) from the moment
a failure is seen until delivery is proven to work again. The check on the publish path is an
attribute read. Failures are seen when a publish or join fails, when the layer's subscriber
connection drops (``on_connection_lost``: its subscriptions are gone with it), when PUBLISH
reaches no subscriber for a group this process has joined (Redis came back empty before the
subscriber connection noticed), and when the probe, sent to this process's own group every
``PROBE_INTERVAL``, does not come back. While unhealthy, every ``RECOVER_INTERVAL`` the broker
joins every group again (the layer's redis-py client resubscribes by itself after a reconnect,
but never says whether it did, and channels_redis' on_reconnect hook is dead code:
channels_redis#406) and sends a probe; once the probe comes back through the subscriber
connection, and as many processes as before the outage are subscribed again (so a publish made
here also reaches their sockets; ``PEERS_WAIT`` at most), publishes are accepted again. If
the layer answers but probes keep getting lost, every membership is dropped and re-made.
Joins during the outage are remembered, not failed. The outage is logged once
(``outage.redis_outage``), not per failed publish.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import metrics
from .channel_names import CONTROL_GROUP
from .outage import describe, redis_outage
from .streams import HistoryPage, Position, Stream

log = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
PROBE = "tc.probe"
PROBE_INTERVAL = 1.0  # seconds between probes while healthy
PROBE_TIMEOUT = 3.0  # a probe not back by then, with nothing else received either, is lost
PROBE_PATIENCE = 10  # timeouts to wait for a late probe while other messages keep arriving
RECOVER_INTERVAL = 0.1  # seconds between recovery attempts while unhealthy
RECOVER_TIMEOUT = 1.0  # a recovery probe not back by then: try again
REMAKE_AFTER = 3.0  # seconds of lost recovery probes while the layer answers before memberships are re-made
PEERS_WAIT = 5.0  # seconds to wait after recovering for the other processes to be subscribed again


class DeliveryUnavailable(ConnectionError):
    """Publishes cannot be delivered now: the channel layer is away or this process is not re-subscribed."""


class LayerBroker:
    def __init__(self, layer, on_message: Callable[[dict], None], outage=redis_outage,
                 ready: Callable[[], Awaitable | None] | None = None):
        self.layer = layer
        self.on_message = on_message
        # After each message: None if the node can take the next at once, else an awaitable that
        # says when (the hub's fan-out backlog is large): the layer holds the rest meanwhile.
        self.ready = ready
        self.outage = outage
        self.channel_name: str | None = None
        self.groups: set[str] = set()  # groups this process has joined (besides its own two)
        self.healthy = True  # False from a failure seen until delivery is proven again
        self._joined: set[str] = set()  # groups whose subscription is known to be in place
        self._probe_group = f"tc.probe.{uuid.uuid4().hex}"
        self._probe_seq = 0
        self._probe_back = asyncio.Event()
        self._received_at = 0.0  # loop time of the pump's last message
        self._answering_since: float | None = None  # while unhealthy: since when the layer answers again
        self._peers = 0  # processes subscribed to the control group, as last seen while healthy
        self._peers_since: float | None = None  # while recovering: since when only peers are missing
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.channel_name = await self.layer.new_channel("specific.tabcast.")
        watch = getattr(self.layer, "on_connection_lost", None)
        if watch is not None:
            watch(self._lost)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._pump()), loop.create_task(self._watch())]
        for group in self._own_groups():
            await self.layer.group_add(group, self.channel_name)
            self._joined.add(group)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    async def join(self, group: str) -> None:
        """Make this process receive the group's messages (called once per local first subscriber)."""
        self.groups.add(group)
        try:
            await self.layer.group_add(group, self.channel_name)
        except UNREACHABLE as exc:
            self._lost(exc)  # kept in self.groups: joined for real once the layer is back
            return
        if self.healthy and group in self.groups:
            self._joined.add(group)

    async def leave(self, group: str) -> None:
        self.groups.discard(group)
        self._joined.discard(group)
        try:
            await self.layer.group_discard(group, self.channel_name)
        except UNREACHABLE as exc:
            # A membership left behind only costs messages the layer drops (no local member).
            self._lost(exc)

    async def send(self, group: str, message: dict, stream: Stream | None = None) -> None:
        """Deliver to every process in the group; raises while delivery does not work (HTTP 503).

        With ``stream``, the layer also records the frame in the channel's history and sends it
        with its position (streams.py)."""
        if not self.healthy:
            raise DeliveryUnavailable("publishes are not delivered until the channel layer is back")
        await self._publish(group, message, stream)

    async def read_stream(self, group: str, since: Position | None, limit: int) -> HistoryPage:
        """A channel's position and history (streams.py); raises if the layer is unreachable."""
        try:
            return await self.layer.read_stream(group, since, limit)
        except UNREACHABLE as exc:
            self._lost(exc)
            raise

    async def _publish(self, group: str, message: dict, stream: Stream | None = None) -> int | None:
        """group_send; returns how many processes Redis delivered to (None: the layer does not say)."""
        try:
            if stream is None:
                receivers = await self.layer.group_send(group, message)
            else:
                receivers = await self.layer.group_send(group, message, stream)
        except UNREACHABLE as exc:
            self._lost(exc)
            raise
        if receivers == 0 and group in self._joined and self.layer.is_subscribed(group):
            # Redis knows no subscriber of a group whose subscription it confirmed to this
            # process: Redis came back (empty) before the subscriber connection noticed.
            self._lost("a joined group had no subscriber in Redis")
            raise DeliveryUnavailable("this process's subscriptions are gone from Redis")
        return receivers

    # --- staying joined ---

    def _own_groups(self) -> tuple[str, ...]:
        return (CONTROL_GROUP, self._probe_group)

    def _lost(self, exc: BaseException | str) -> None:
        metrics.REDIS_ERRORS.labels("delivery").inc()
        if self.healthy:
            self.healthy = False
            self._joined.clear()
        self._answering_since = None
        self.outage.lost("delivery", exc)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL if self.healthy else RECOVER_INTERVAL)
            try:
                if self.healthy:
                    if not await self._probe(PROBE_TIMEOUT, PROBE_PATIENCE):
                        self._lost(f"probe not delivered within {PROBE_TIMEOUT:.0f} s")
                    elif (peers := await self._count_peers()) is not None:
                        self._peers = peers
                else:
                    await self._recover()
            except UNREACHABLE as exc:
                self._lost(exc)
            except Exception as exc:  # noqa: BLE001 - keep watching
                if self.healthy:
                    log.exception("channel layer probe failed")
                else:
                    self.outage.lost("delivery", describe(exc))

    async def _probe(self, timeout: float, patience: int) -> bool:
        """Publish to our own group; True if it came back through the layer.

        A probe queued behind a burst is late, not lost: while the pump keeps receiving, keep
        waiting (up to ``patience`` timeouts), so a busy process never drops its memberships.
        A publish that hangs (Redis frozen) counts as lost after ``timeout``.
        """
        self._probe_seq += 1
        self._probe_back.clear()
        loop = asyncio.get_running_loop()
        sent_at = started = loop.time()
        receivers = await asyncio.wait_for(
            self._publish(self._probe_group, {"type": PROBE, "seq": self._probe_seq}), timeout)
        if receivers == 0:
            return False  # not even this process is subscribed to its own group
        for _ in range(patience):
            try:
                await asyncio.wait_for(self._probe_back.wait(), max(timeout - (loop.time() - sent_at), 0.01))
                metrics.REDIS_DURATION.labels("probe").observe(loop.time() - started)
                return True
            except TimeoutError:
                if loop.time() - self._received_at > timeout:
                    return False  # nothing at all arrived meanwhile: the probe is lost
                sent_at = loop.time()
        return False

    async def _recover(self) -> None:
        """Join every group again and prove delivery with a probe; then accept publishes again."""
        self.outage.tick()
        groups = [*self._own_groups(), *self.groups]
        now = asyncio.get_running_loop().time()
        remake = self._answering_since is not None and now - self._answering_since > REMAKE_AFTER
        if remake:
            self._answering_since = now
        for group in groups:
            if remake:  # drop the membership first: forces a fresh SUBSCRIBE
                await self.layer.group_discard(group, self.channel_name)
            if group in self.groups or group in self._own_groups():  # not left meanwhile
                await self.layer.group_add(group, self.channel_name)
        try:
            delivered = await self._probe(RECOVER_TIMEOUT, 1)
        except TimeoutError:
            self._answering_since = None  # the publish itself hung (Redis frozen)
            return
        if not delivered:
            if self._answering_since is None:
                self._answering_since = now
            return
        self._answering_since = None
        # This process receives again. Publishes from here must also reach the other processes'
        # sockets: wait (up to PEERS_WAIT) until as many processes are subscribed as before the
        # outage; redis-py resubscribes a process's channels in one SUBSCRIBE, so one that is
        # subscribed to the control group again is subscribed to its groups again.
        peers = await self._count_peers()
        if peers is not None and peers < self._peers:
            if self._peers_since is None:
                self._peers_since = now
            if now - self._peers_since < PEERS_WAIT:
                return
        self._peers_since = None
        if peers is not None:
            self._peers = peers
        self._joined = {group for group in groups if group in self.groups or group in self._own_groups()}
        self.healthy = True
        metrics.BROKER_REJOINS.inc()
        metrics.BROKER_GROUPS_REJOINED.inc(len(self.groups))
        self.outage.back("delivery")

    async def _count_peers(self) -> int | None:
        """Processes subscribed to the control group (None if the layer cannot tell)."""
        subscribers = getattr(self.layer, "subscribers", None)
        return None if subscribers is None else await subscribers(CONTROL_GROUP)

    async def _pump(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep serving; the layer reconnects by itself
                log.exception("channel layer receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            self._received_at = asyncio.get_running_loop().time()
            if message.get("type") == PROBE:
                if message.get("seq") == self._probe_seq:
                    self._probe_back.set()
                continue
            try:
                self.on_message(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop fan-out
                log.exception("failed to handle %s", message.get("type"))
            if self.ready is not None and (waiting := self.ready()) is not None:
                await waiting
