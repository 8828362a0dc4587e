"""Carries publishes between processes through Channels groups, one membership per process.

Each process owns one channel-layer channel. It joins the group of an (app, channel) when
its first local socket subscribes and leaves when the last one goes; a publish is one
``group_send`` of the pre-encoded frame, and one pump task per process receives it and
hands it to the node, which fans it out to local sockets. With the in-process layer this is
the embedded default; with channels_redis pub/sub (``redis_layer.py``) a publish is one
Redis PUBLISH, pipelined with the process's other publishes, that reaches exactly the
processes with subscribers.

When Redis goes away, publishes raise at once (the HTTP API answers 503); one that hits a
pooled connection which died with a restarted Redis is retried once. Joins during the
outage are remembered, not failed. A probe sent to this process's own group every second
checks end to end that memberships deliver: once the layer answers again every group is
joined again, and if even the probe was lost every membership is dropped and re-made (the
layer's redis-py client resubscribes by itself after a reconnect, but never says whether it
did, and channels_redis' on_reconnect hook is dead code: channels_redis#406).
"""

import asyncio
import logging
import uuid
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .channel_names import CONTROL_GROUP

log = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
PROBE = "tc.probe"
PROBE_INTERVAL = 1.0  # seconds between probes
PROBE_TIMEOUT = 3.0  # a probe not back by then, with nothing else received either, is lost
PROBE_PATIENCE = 10  # timeouts to wait for a late probe while other messages keep arriving


class LayerBroker:
    def __init__(self, layer, on_message: Callable[[dict], None]):
        self.layer = layer
        self.on_message = on_message
        self.channel_name: str | None = None
        self.groups: set[str] = set()  # groups this process has joined (besides its own two)
        self.healthy = True  # False from a failure seen until every group is joined again
        self._probe_group = f"tc.probe.{uuid.uuid4().hex}"
        self._probe_seq = 0
        self._probe_back = asyncio.Event()
        self._received_at = 0.0  # loop time of the pump's last message
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.channel_name = await self.layer.new_channel("specific.tabcast.")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._pump()), loop.create_task(self._watch())]
        for group in self._own_groups():
            await self.layer.group_add(group, self.channel_name)

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

    async def leave(self, group: str) -> None:
        self.groups.discard(group)
        await self.layer.group_discard(group, self.channel_name)

    async def send(self, group: str, message: dict) -> None:
        """Deliver to every process in the group (raises if the layer is unreachable)."""
        try:
            await self.layer.group_send(group, message)
        except UNREACHABLE:
            # After a Redis restart the first publish may use a pooled connection that died.
            await self.layer.group_send(group, message)

    # --- staying joined ---

    def _own_groups(self) -> tuple[str, ...]:
        return (CONTROL_GROUP, self._probe_group)

    def _lost(self, exc: BaseException) -> None:
        if self.healthy:
            log.warning("channel layer unreachable (%r); publishes fail until it is back", exc)
        self.healthy = False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            try:
                delivered = await self._probe()
                if not delivered:
                    self._lost(TimeoutError("probe not delivered"))
                if not self.healthy:
                    await self._rejoin(remake=not delivered)
            except UNREACHABLE as exc:
                self._lost(exc)
            except Exception:  # noqa: BLE001 - keep watching
                log.exception("channel layer probe failed")

    async def _probe(self) -> bool:
        """Publish to our own group; True if it came back through the layer.

        A probe queued behind a burst is late, not lost: while the pump keeps receiving, keep
        waiting (up to PROBE_PATIENCE timeouts), so a busy process never drops its memberships.
        """
        self._probe_seq += 1
        self._probe_back.clear()
        await self.send(self._probe_group, {"type": PROBE, "seq": self._probe_seq})
        loop = asyncio.get_running_loop()
        for _ in range(PROBE_PATIENCE):
            try:
                await asyncio.wait_for(self._probe_back.wait(), PROBE_TIMEOUT)
                return True
            except TimeoutError:
                if loop.time() - self._received_at > PROBE_TIMEOUT:
                    return False  # nothing at all arrived meanwhile: the probe is lost
        return False

    async def _rejoin(self, remake: bool) -> None:
        """Join every group again; ``remake`` drops each membership first (forces a resubscribe)."""
        groups = [*self._own_groups(), *self.groups]
        for group in groups:
            if remake:
                await self.layer.group_discard(group, self.channel_name)
            if group in self.groups or group in self._own_groups():  # not left meanwhile
                await self.layer.group_add(group, self.channel_name)
        self.healthy = True
        log.warning("channel layer is back; %s %d groups", "re-made" if remake else "re-joined", len(groups))

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
