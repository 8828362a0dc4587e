"""The node: one per server process. It ties the hub, the broker and the cluster state.

Data path of a publish (HTTP or client event):
  ``Node.publish`` encodes the frame once -> ``broker.send`` (Channels ``group_send`` to the
  group of that app's channel) -> every process whose hub has subscribers receives it once
  in its pump -> ``Node.on_message`` -> ``hub.broadcast`` writes the same text to each
  local socket.
"""

import asyncio
import logging
import time
from typing import Any

import orjson

from channels.layers import get_channel_layer
from django.conf import settings

from . import channel_names, codes, metrics, protocol, streams, watchlist
from .broker import LayerBroker
from .held_webhooks import HeldWebhooks
from .channel_names import Kind, group_name, kind_of
from .connection import Connection
from .hub import AppTraffic, Hub
from .outage import redis_outage
from .state import CachedEvent, Member, build_state
from .streams import InvalidPosition, Position, Stream
from .state.base import ONLINE_CHANNEL
from .tenancy import AppInfo, get_app
from .webhooks import WebhookSender

log = logging.getLogger(__name__)

PUBLISH = "tc.publish"
# Deliveries the hub may have waiting (fair fan-out, hub.py) before the broker stops taking messages:
# ~0.3-0.5 s of fan-out here, well inside the broker's probe timeout.
MAX_FAN_OUT_BACKLOG = 50_000
PACED_CATCH_UP = 16  # frames a resume buffer may hold and still be written in one go with the swap
TERMINATE = "tc.terminate"


class SubscribeRefused(Exception):
    """A subscription the node will not make; carries the subscription_error fields."""

    def __init__(self, kind: str, message: str, status: int):
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


class _Head:
    """Where one channel's live stream is in this process: the last position its sockets got."""

    __slots__ = ("epoch", "offset", "ahead")

    def __init__(self, epoch: str, offset: int):
        self.epoch, self.offset = epoch, offset
        # Sockets that resumed past ``offset`` (they were further on before they reconnected here,
        # or their replay read history beyond what has reached this process): socket id -> the
        # offset they have. The frames up to it, arriving late, are not written to them again.
        self.ahead: dict[str, int] | None = None


class _ResumeBuffer:
    """Stands in the hub for a socket whose subscription is being set up: frames of the channel
    that arrive meanwhile are kept, and written after the replay, minus what it already had."""

    __slots__ = ("conn", "socket_id", "frames")

    def __init__(self, conn: Connection):
        self.conn, self.socket_id = conn, conn.socket_id
        self.frames: list[str] = []

    @property
    def tabs(self) -> int:
        return self.conn.tabs

    def send(self, frame: str, wire: bytes | None = None) -> None:
        self.frames.append(frame)


def _after(frames: list[str], start: Position | None) -> list[str]:
    """The frames a resume buffer caught that come after ``start`` (the replay had the others)."""
    if start is None:
        return list(frames)
    kept = []
    for frame in frames:
        at = streams.position_of(frame)
        if at is None or at.epoch != start.epoch or at.offset > start.offset:
            kept.append(frame)
    return kept


class Node:
    def __init__(self, layer=None, state=None):
        self.conf = settings.TABCAST
        self.hub = Hub()
        self.state = state or build_state()
        self.broker = LayerBroker(layer or get_channel_layer(), self.on_message, ready=self._fan_out_ready)
        self.loop = asyncio.get_running_loop()
        self._tasks: list[asyncio.Task] = []
        self._joins: dict[tuple[int, str], asyncio.Future] = {}  # group joins in flight
        # Channel streams (docs/recovery.md): per (app, channel) with local subscribers, where its
        # live stream is here; and the channels whose gap is being filled from history, with the
        # messages that arrived meanwhile.
        self._heads: dict[tuple[int, str], _Head] = {}
        self._repairs: dict[tuple[int, str], list[dict]] = {}
        self._repairing: set[asyncio.Task] = set()
        self.accepting = True  # False once draining (a deploy): new sockets get 4200, /healthz 503
        self.stopping = False  # True once stop() runs: the last flush (billing persists its rollups then)
        self._stopped: asyncio.Future | None = None  # set by the first stop()
        # Observers of what happens on each app (the dashboard's debug console); called
        # synchronously as listener(app_id, kind, details) and must not block.
        self.listeners: list = []
        # Coroutine functions awaited after each traffic flush, the last one included at
        # shutdown while the state is still open (billing persists usage rollups there).
        self.flush_hooks: list = []
        self._flushed_at = time.monotonic()

    def emit(self, app_id: int, kind: str, **details: Any) -> None:
        for listener in self.listeners:
            try:
                listener(app_id, kind, details)
            except Exception:  # noqa: BLE001 - observers never break the data path
                log.exception("listener failed")

    async def start(self) -> None:
        self.webhooks = WebhookSender(on_queued=self._webhook_queued)  # a webhook is a message
        # channel_vacated / member_removed wait; a quick return cancels them (held_webhooks.py).
        self.held_webhooks = HeldWebhooks(self, self.conf.get("WEBHOOK_LEAVE_DELAY", 0))
        await self.state.start()
        await self.broker.start()
        self._tasks = [
            self.loop.create_task(self._sweep_idle()),
            self.loop.create_task(self._flush_traffic()),
            self.loop.create_task(self._announce_departed()),
        ]

    def _webhook_queued(self, app_id: int) -> None:
        self.hub.count_published(app_id)
        metrics.published("webhook")

    async def drain(self, window: float, abort=lambda: False) -> None:
        """A deploy's first step (SIGTERM; ``server.TabcastServer.shutdown``): take no new sockets
        (4200, and /healthz answers 503 "draining"), tell the open ones to reconnect (4200) in
        evenly spaced batches over ``window`` seconds, and give their consumers a moment to leave
        the hub. Publishing, state and metering keep working until :meth:`stop`."""
        self.accepting = False
        await self.close_all(codes.RECONNECT_NOW, "Server is restarting, please reconnect", window, abort)
        deadline = self.loop.time() + 2
        while self.hub.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Close what is still open with 4200 (clients reconnect at once, elsewhere) and clean up.

        Runs from the ASGI lifespan shutdown, i.e. after the server drained and finished its HTTP
        requests in flight, so a publish in flight still goes out through a working broker and
        its traffic is in the last flush. Runs once; a second caller waits for the first.
        """
        if self._stopped is not None:
            return await asyncio.shield(self._stopped)
        self._stopped = self.loop.create_future()
        try:
            self.accepting = False
            self.stopping = True
            await self.close_all(codes.RECONNECT_NOW, "Server is restarting, please reconnect")
            for task in self._tasks:
                task.cancel()
            await self._flush_traffic_once()
            await self.held_webhooks.close()  # decided now, while the state is open
            await self.broker.stop()
            await self.state.stop()
            await self.webhooks.close()
        finally:
            self._stopped.set_result(None)

    # --- connections ---

    async def connect(self, conn: Connection) -> None:
        conn.last_seen = time.monotonic()
        self.hub.add_connection(conn)
        await self.state.connections_changed(conn.app.id, 1, conn.tabs)
        self.emit(conn.app.id, "connected", socket_id=conn.socket_id, origin=conn.origin)

    async def disconnect(self, conn: Connection) -> None:
        if conn.socket_id not in self.hub.connections:
            return
        for channel in list(conn.channels):
            try:
                await self.unsubscribe(conn, channel)
            except Exception as exc:  # noqa: BLE001 - e.g. Redis away: the socket must still leave the hub
                if not redis_outage.absorb(exc):
                    log.warning("could not announce %s leaving %s", conn.socket_id, channel)
        if conn.user_id is not None:
            try:
                await watchlist.signed_out(self, conn)  # offline (if its last connection), watchers told
            except Exception as exc:  # noqa: BLE001 - Redis away: the node TTL takes it offline
                if not redis_outage.absorb(exc):
                    log.warning("could not sign %s out", conn.socket_id, exc_info=True)
            await self._leave_local(conn.app.id, channel_names.user_channel(conn.user_id), conn)
        self.hub.remove_connection(conn)
        await self.state.connections_changed(conn.app.id, -1, -conn.tabs)
        self.emit(conn.app.id, "disconnected", socket_id=conn.socket_id)

    async def set_tabs(self, conn: Connection, tabs: int) -> None:
        """A SharedWorker reported how many tabs share this socket (metering)."""
        delta = tabs - conn.tabs
        if delta:
            self.hub.set_tabs(conn, tabs)
            await self.state.connections_changed(conn.app.id, 0, delta)

    async def close_all(self, code: int, reason: str, window: float = 0.0, abort=lambda: False,
                        tick: float = 0.1) -> None:
        """pusher:error + close with ``code`` to every open socket: at once, or over ``window``
        seconds in evenly spaced batches (at most one per ``tick``), so that their reconnects reach
        the other processes as a stream, not a herd. ``abort()`` true: close the rest at once."""
        frame = protocol.error(code, reason)
        conns = list(self.hub.connections.values())
        batches = max(1, min(len(conns), int(window / tick))) if window > 0 else 1
        started = self.loop.time()
        for index in range(batches):
            if index and not abort():
                delay = started + window * index / batches - self.loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            for conn in conns[len(conns) * index // batches:len(conns) * (index + 1) // batches]:
                if not conn.closed:  # gone meanwhile
                    conn.send(frame)
                    conn.close(code, reason)

    # --- subscriptions ---

    async def subscribe(self, conn: Connection, channel: str, member: Member | None,
                        since: object = None) -> None:
        """Subscribe an authorized socket; sends subscription_succeeded (and cache/presence frames).

        ``since``: the position the client last saw (the subscribe frame's ``position``, unchecked);
        the messages after it are replayed, then ``tabcast:resumed`` (docs/recovery.md).
        """
        app = conn.app
        if channel in conn.channels:
            conn.send(protocol.subscription_succeeded(channel, await self._presence_payload(app.id, channel)
                                                      if member else None))
            return
        limit = self.conf["MAX_SUBSCRIPTIONS_PER_SOCKET"]
        if len(conn.channels) >= limit:
            metrics.limit_rejected("subscriptions_per_socket")
            raise SubscribeRefused("LimitReached", f"This connection already has {limit} subscriptions, the "
                                   "limit; unsubscribe from one first", codes.SUB_SUBSCRIPTION_LIMIT)
        if member is not None:
            members = await self.state.members(app.id, channel)
            if member.key not in members and len(members) >= self.conf["MAX_PRESENCE_MEMBERS"]:
                metrics.limit_rejected("presence_members")
                raise SubscribeRefused("LimitReached", "The presence channel is full", codes.SUB_MEMBER_LIMIT)
        conn.channels[channel] = member
        # A channel with history: until the socket's place in the stream is known, a buffer stands
        # in for it in the hub, so nothing published meanwhile is lost or written twice.
        buffer = _ResumeBuffer(conn) if self._stream(app, channel) is not None else None
        await self._join_local(app.id, channel, conn, buffer)
        count = await self.state.add_subscription(app.id, channel, conn.socket_id)
        if count == 1:
            await self.held_webhooks.occupied(app, channel)
        first = False
        if member is not None:
            first = await self.state.add_member(app.id, channel, conn.socket_id, member)
            if first:
                await self.held_webhooks.member_added(app, channel, member.user_id)
        presence = await self._presence_payload(app.id, channel) if member is not None else None
        cached = await self.state.cache_get(app.id, channel) if channel_names.is_cache(channel) else None
        start, replay, resumed = None, (), None
        if buffer is not None:
            start, replay, resumed = await self._place(conn, channel, since)
        # The position the socket's frames follow: before the replay, if there is one.
        announced = Position(start.epoch, replay[0][0] - 1) if replay else start
        conn.send(protocol.subscription_succeeded(channel, presence, None if announced is None else str(announced)))
        if channel_names.is_cache(channel) and not (resumed is not None and resumed[0]):
            conn.send(cached.frame if cached else protocol.cache_miss(channel))
            if cached is None:
                self.webhooks.send(app, {"name": "cache_miss", "channel": channel})
        if buffer is not None:
            await self._go_live(conn, channel, buffer, start, replay, resumed)
        if first:
            await self._send(app.id, channel, protocol.member_added(channel, member.user_id, member.user_info),
                             conn.socket_id)
        elif member is None and app.subscription_count:
            await self._send(app.id, channel, protocol.subscription_count(channel, count))
        self.emit(app.id, "subscribed", socket_id=conn.socket_id, channel=channel)

    async def _place(self, conn: Connection, channel: str, since: object):
        """Where a subscribing socket starts in the channel's stream, after its buffer is in the hub.

        Returns (its position once the replay is written, the frames to replay, (recovered,
        missed, reason) if it asked to resume). It starts where this process's live stream is
        (``_Head``): later frames reach it live, or through a repair if one is lost. A resume
        replays from history what it missed up to the stream's top; frames up to there that reach
        this process later are not written to it again (``_Head.ahead``).
        """
        app = conn.app
        key = (app.id, channel)
        wanted = None
        reason = None
        if since is not None:
            try:
                wanted = Position.parse(since)
            except InvalidPosition:
                reason = "invalid_position"
        # No position to resume from: only the stream's top is wanted, not its frames (a read of
        # 100 kept frames cost ~5x a subscribe's Python, bench/RESULTS.md "Recovery").
        limit = self.conf["MAX_REPLAY"] if wanted is not None else 0
        try:
            page = await self.broker.read_stream(group_name(app.id, channel), wanted, limit)
        except Exception as exc:  # noqa: BLE001 - Redis away: subscribed all the same, and told
            if not redis_outage.absorb(exc):
                log.warning("could not read the stream of %s", channel, exc_info=True)
            return None, (), None if since is None else (False, 0, "unavailable")
        top = page.top
        head = self._heads.get(key)
        if head is None and self.hub.local_count(app.id, channel):
            head = self._heads[key] = _Head(top.epoch, top.offset)
        start = head.offset if head is not None and head.epoch == top.epoch else top.offset
        replay: list[tuple[int, str]] = []
        resumed = None
        if since is not None:
            if wanted is not None:
                reason = page.gap_after(wanted)
                if reason is None and top.offset - wanted.offset > self.conf["MAX_REPLAY"]:
                    reason = "too_many"
            if reason is None:
                replay = [(offset, frame) for offset, frame in page.frames if offset > wanted.offset]
                start = top.offset
            resumed = (reason is None, len(replay), reason)
        if head is not None and head.epoch == top.epoch and start > head.offset:
            if head.ahead is None:
                head.ahead = {}
            head.ahead[conn.socket_id] = start
        return Position(top.epoch, start), replay, resumed

    async def _go_live(self, conn: Connection, channel: str, buffer: _ResumeBuffer, start: Position | None,
                       replay, resumed) -> None:
        """Write the replay, then what the buffer caught after ``start``, then swap the socket in
        for its buffer. The replay and a large catch go at the reader's pace (the buffer keeps
        catching meanwhile); the last few frames and the swap happen synchronously, so no live
        frame of the channel can come in between."""
        app_id = conn.app.id
        frames = [frame for _, frame in replay]
        self.hub.count_replayed(app_id, conn, frames)
        await conn.send_paced(frames)
        caught = 0  # buffer.frames written so far
        while len(buffer.frames) - caught > PACED_CATCH_UP and not conn.closed:
            newer, caught = buffer.frames[caught:], len(buffer.frames)
            await conn.send_paced(_after(newer, start))
        if channel not in conn.channels:  # unsubscribed while the replay went out: the hub let go of the buffer
            return
        tail = _after(buffer.frames[caught:], start)  # (counted as deliveries when the hub wrote them to the buffer)
        if resumed is not None:
            recovered, missed, reason = resumed
            tail.append(protocol.resumed(channel, recovered, missed, reason))
            self.hub.count_resumes(app_id, recovered)
            metrics.resumed(recovered)
        conn.send_many(tail)
        self.hub.replace(app_id, channel, buffer, conn)

    async def unsubscribe(self, conn: Connection, channel: str) -> None:
        if channel not in conn.channels:
            return
        app = conn.app
        member = conn.channels.pop(channel)
        await self._leave_local(app.id, channel, conn)
        count = await self.state.remove_subscription(app.id, channel, conn.socket_id)
        if member is not None:
            if await self.state.remove_member(app.id, channel, conn.socket_id, member.key):
                await self._send(app.id, channel, protocol.member_removed(channel, member.user_id))
                await self.held_webhooks.member_removed(app, channel, member.user_id)
        elif app.subscription_count and count:
            await self._send(app.id, channel, protocol.subscription_count(channel, count))
        if count == 0:
            await self.held_webhooks.vacated(app, channel)
        self.emit(app.id, "unsubscribed", socket_id=conn.socket_id, channel=channel)

    async def signin(self, conn: Connection, user_id: str, user_data: dict) -> None:
        """Bind a socket to a user: it now receives ``#server-to-user-<id>`` publishes."""
        # Watchlist events (watchlist.py): the old watchlist goes; the user stays online if it is the same.
        await watchlist.signed_out(self, conn, still_online=conn.user_id == user_id)
        if conn.user_id is not None and conn.user_id != user_id:
            await self._leave_local(conn.app.id, channel_names.user_channel(conn.user_id), conn)
        conn.user_id, conn.user_data = user_id, user_data
        await self._join_local(conn.app.id, channel_names.user_channel(user_id), conn)
        await watchlist.signed_in(self, conn)

    async def _join_local(self, app_id: int, channel: str, conn: Connection,
                          stand_in: _ResumeBuffer | None = None) -> None:
        """Add a local subscriber (or its ``stand_in``); the first one makes this process join the
        channel's group.

        Later subscribers that arrive while that join is in flight wait for it, so nobody is
        told "subscribed" before this process actually receives the channel's publishes.
        """
        key = (app_id, channel)
        if not self.hub.subscribe(app_id, channel, stand_in or conn):
            pending = self._joins.get(key)
            if pending is not None:
                try:
                    await asyncio.shield(pending)
                except Exception:
                    self.hub.unsubscribe(app_id, channel, conn)
                    conn.channels.pop(channel, None)
                    raise
            return
        joined = self._joins[key] = self.loop.create_future()
        try:
            await self.broker.join(group_name(app_id, channel))
            joined.set_result(None)
        except Exception as exc:
            joined.set_exception(exc)
            joined.exception()  # retrieved here: waiters re-raise it themselves
            self.hub.unsubscribe(app_id, channel, conn)
            conn.channels.pop(channel, None)
            raise
        finally:
            del self._joins[key]

    async def _leave_local(self, app_id: int, channel: str, conn: Connection) -> None:
        head = self._heads.get((app_id, channel))
        if head is not None and head.ahead:
            head.ahead.pop(conn.socket_id, None)
        if self.hub.unsubscribe(app_id, channel, conn):
            self._heads.pop((app_id, channel), None)
            try:
                await self.broker.leave(group_name(app_id, channel))
            except Exception:  # noqa: BLE001 - a stale membership only costs an ignored message
                log.warning("could not leave group of %s/%s", app_id, channel)

    async def _presence_payload(self, app_id: int, channel: str) -> dict:
        members = await self.state.members(app_id, channel)
        return {
            "ids": [m.user_id for m in members.values()],
            "hash": {key: m.user_info for key, m in members.items()},
            "count": len(members),
        }

    # --- publishing ---

    async def publish(self, app: AppInfo, channels: list[str], event: str, data: str,
                      except_socket: str | None = None, source: str = "internal") -> None:
        """Publish one event to channels; raises if the broker is unreachable.

        ``source`` labels the /metrics count: "http" (the HTTP API), "console", "internal"."""
        for channel in channels:
            frame = protocol.event(event, channel, data)
            if channel_names.is_cache(channel):
                await self.state.cache_set(app.id, channel, CachedEvent(frame, event, data, self.conf["CACHE_TTL"]))
            await self._send(app.id, channel, frame, except_socket, self._stream(app, channel))
        self.hub.count_published(app.id, len(channels))
        metrics.published(source, len(channels))
        self.emit(app.id, "published", channels=channels, event=event, bytes=len(data))

    async def client_event(self, conn: Connection, channel: str, event: str, data: Any) -> None:
        member = conn.channels.get(channel)
        user_id = member.user_id if member is not None else None
        await self._send(conn.app.id, channel, protocol.client_event(event, channel, data, user_id), conn.socket_id,
                         self._stream(conn.app, channel))
        self.hub.count_published(conn.app.id)
        metrics.published("client_event")
        webhook = {"name": "client_event", "channel": channel, "event": event, "data": data,
                   "socket_id": conn.socket_id}
        if user_id is not None:
            webhook["user_id"] = user_id
        self.webhooks.send(conn.app, webhook)
        self.emit(conn.app.id, "client_event", socket_id=conn.socket_id, channel=channel, event=event)

    async def terminate_user(self, app: AppInfo, user_id: str) -> None:
        await self.broker.send(channel_names.CONTROL_GROUP, {"type": TERMINATE, "app": app.id, "user": user_id})

    async def _send(self, app_id: int, channel: str, frame: str, except_socket: str | None = None,
                    stream: Stream | None = None) -> None:
        """Hand a frame to the broker; with ``stream`` it is also kept in the channel's history."""
        message = {"type": PUBLISH, "app": app_id, "channel": channel, "frame": frame, "except": except_socket}
        if (sent_at := metrics.stamp()) is not None:  # 1 in N: publish -> deliver latency
            message["t"] = sent_at
        if stream is None:
            await self.broker.send(group_name(app_id, channel), message)
        else:
            await self.broker.send(stream.group, message, stream)
            self.hub.count_stored(app_id, len(frame))

    @staticmethod
    def _stream(app: AppInfo, channel: str) -> Stream | None:
        """The channel's stream, if the app keeps history (docs/recovery.md); user channels have none."""
        if app.history_size <= 0 or channel.startswith("#"):
            return None
        return Stream(group_name(app.id, channel), app.history_size, min(app.history_ttl, streams.META_TTL))

    def _fan_out_ready(self):
        """None while the hub's fan-out backlog is small; else what the broker awaits first."""
        if self.hub.backlog < MAX_FAN_OUT_BACKLOG:
            return None
        return self.hub.wait_backlog_below(MAX_FAN_OUT_BACKLOG)

    def on_message(self, message: dict) -> None:
        """A message from the channel layer (called by the broker's pump)."""
        kind = message.get("type")
        if kind == PUBLISH:
            offset = message.get("offset")
            if offset is None:
                self.hub.broadcast(message["app"], message["channel"], message["frame"], message.get("except"))
            else:
                self._in_order(message, offset)
            if "t" in message:
                metrics.observe_latency(message["t"])
        elif kind == TERMINATE:
            channel = channel_names.user_channel(message["user"])
            frame = protocol.error(codes.UNAUTHORIZED, "You got disconnected by the app.")
            for conn in self.hub.subscribers(message["app"], channel):
                conn.send(frame)
                conn.close(codes.UNAUTHORIZED, "Terminated by the app")

    # --- channel streams (docs/recovery.md) ---

    def _in_order(self, message: dict, offset: int) -> None:
        """Fan out a message of a channel with history, in stream order.

        The next offset goes out at once. One already written (a repair got it first) is dropped.
        After a gap, or a new epoch (the history was lost), the channel's messages wait while
        ``_repair`` fills the gap from history or tells the sockets it cannot.
        """
        app_id, channel = key = (message["app"], message["channel"])
        waiting = self._repairs.get(key)
        if waiting is not None:
            waiting.append(message)
            return
        head = self._heads.get(key)
        if head is None:
            if self.hub.local_count(app_id, channel):  # else: a message for a group just left
                self._heads[key] = _Head(message["epoch"], offset)
                self.hub.broadcast(app_id, channel, message["frame"], message.get("except"))
            return
        if message["epoch"] == head.epoch:
            if offset == head.offset + 1:
                head.offset = offset
                self._fan_out_next(head, app_id, channel, message["frame"], message.get("except"))
                return
            if offset <= head.offset:
                return  # written already
        self._repairs[key] = [message]
        task = self.loop.create_task(self._repair(key, head))
        self._repairing.add(task)
        task.add_done_callback(self._repairing.discard)

    def _fan_out_next(self, head: _Head, app_id: int, channel: str, frame: str, except_socket: str | None) -> None:
        """Broadcast the frame at ``head.offset``, except to sockets that already have it."""
        ahead = head.ahead
        skip = None
        if ahead:
            offset = head.offset
            skip = {socket_id for socket_id, at in ahead.items() if at >= offset}
            for socket_id in [socket_id for socket_id, at in ahead.items() if at <= offset]:
                del ahead[socket_id]  # caught up: from the next frame on it gets them all
        self.hub.broadcast(app_id, channel, frame, except_socket, skip)

    async def _repair(self, key: tuple[int, str], head: _Head) -> None:
        """Fill a gap in a channel's live stream from its history; else tell its sockets (recovered: false)."""
        app_id, channel = key
        reason = "epoch_changed" if self._repairs[key][0]["epoch"] != head.epoch else None
        page = None
        if reason is None:
            try:
                page = await self.broker.read_stream(group_name(app_id, channel), Position(head.epoch, head.offset),
                                                     self.conf["MAX_REPLAY"])
            except Exception as exc:  # noqa: BLE001 - Redis away: the sockets are told instead
                if not redis_outage.absorb(exc):
                    log.warning("could not read the stream of %s", channel, exc_info=True)
                reason = "unavailable"
        if page is not None:
            reason = page.gap_after(Position(head.epoch, head.offset))
            if reason is None and page.top.offset - head.offset > self.conf["MAX_REPLAY"]:
                reason = "too_many"
        waiting = self._repairs.pop(key)
        if self._heads.get(key) is not head:
            pass  # every local subscriber left meanwhile (any new one has its own head)
        elif reason is None:
            metrics.gap_repaired()
            for offset, frame in page.frames:
                if offset == head.offset + 1:
                    head.offset = offset
                    # Not the original except_socket: the sender of a client event lost in transit gets it back.
                    self._fan_out_next(head, app_id, channel, frame, None)
        else:
            sockets = self.hub.local_count(app_id, channel)
            self.hub.broadcast(app_id, channel, protocol.resumed(channel, False, 0, reason))
            self.hub.count_resumes(app_id, False, sockets)
            metrics.resumed(False, sockets)
            del self._heads[key]  # the next message starts the stream here again
        for message in waiting:  # in order, through the same checks (a new gap starts a new repair)
            self._in_order(message, message["offset"])

    async def history(self, app: AppInfo, channel: str, since: str | None, limit: int) -> dict[str, Any]:
        """The HTTP history API's answer (docs/recovery.md); raises InvalidPosition for a bad ``since``."""
        wanted = Position.parse(since) if since is not None else None
        if self._stream(app, channel) is None:
            return {"channel": channel, "history": False, "messages": [], "more": False}
        page = await self.broker.read_stream(group_name(app.id, channel), wanted, limit)
        frames = page.frames
        answer: dict[str, Any] = {"channel": channel, "history": True, "position": str(page.top)}
        if wanted is not None:
            answer["recovered"] = page.gap_after(wanted) is None
            if wanted.epoch == page.top.epoch:
                frames = [(offset, frame) for offset, frame in frames if offset > wanted.offset]
        answer["messages"] = [_history_message(frame, page.top.epoch, offset) for offset, frame in frames]
        last = frames[-1][0] if frames else (wanted.offset if wanted is not None and
                                             wanted.epoch == page.top.epoch else page.top.offset)
        answer["more"] = last < page.top.offset
        return answer

    # --- queries (HTTP API) ---

    async def channel_info(self, app: AppInfo, channel: str) -> dict[str, Any]:
        count = await self.state.subscription_count(app.id, channel)
        info: dict[str, Any] = {"occupied": count > 0, "subscription_count": count}
        if kind_of(channel) == Kind.PRESENCE:
            info["user_count"] = len(await self.state.members(app.id, channel))
        return info

    # --- background tasks ---

    async def _announce_departed(self) -> None:
        """member_removed for users whose last sockets were on a process that died or stopped."""
        while True:
            await asyncio.sleep(1)
            try:
                for app_id, channel, member in await self.state.reap_departed():
                    if channel == ONLINE_CHANNEL:  # a signed-in user, not a presence member
                        await watchlist.departed(self, app_id, member.user_id)
                        continue
                    await self._send(app_id, channel, protocol.member_removed(channel, member.user_id))
                    app = await get_app(app_id=app_id)
                    if app is not None:
                        self.webhooks.send(app, {"name": "member_removed", "channel": channel,
                                                 "user_id": member.user_id})
            except Exception as exc:  # noqa: BLE001 - the next round retries
                if not redis_outage.absorb(exc):
                    log.warning("could not announce departed members", exc_info=True)

    async def _sweep_idle(self) -> None:
        """Ping silent clients after activity_timeout; close with 4201 when the pong never comes."""
        timeout = self.conf["ACTIVITY_TIMEOUT"]
        grace = self.conf["PONG_GRACE"]
        while True:
            await asyncio.sleep(min(5, timeout / 4))
            now = time.monotonic()
            for conn in list(self.hub.connections.values()):
                silent = now - conn.last_seen
                if silent > timeout + grace and conn.closed:
                    # Closed long ago and the server never reported the socket gone: release it
                    # here so a lost disconnect can't hold subscriptions and a quota slot forever.
                    try:
                        await self.disconnect(conn)
                    except Exception as exc:  # noqa: BLE001 - the state backend is away; retried next sweep
                        if not redis_outage.absorb(exc):
                            log.warning("could not release closed socket %s", conn.socket_id)
                elif silent > timeout + grace:
                    conn.send(protocol.error(codes.PONG_NOT_RECEIVED, "Pong reply not received in time"))
                    conn.close(codes.PONG_NOT_RECEIVED, "Pong reply not received")
                elif silent > timeout and not conn.pinged:
                    conn.pinged = True
                    conn.send(protocol.PING)

    async def _flush_traffic(self) -> None:
        while True:
            await asyncio.sleep(1)
            try:
                await self._flush_traffic_once()
            except Exception as exc:  # noqa: BLE001 - counters are retried next round
                if not redis_outage.absorb(exc):  # a Redis outage is logged once, not every second
                    log.warning("could not flush traffic counters", exc_info=True)

    async def _flush_traffic_once(self) -> None:
        """Write the counters gathered since the last flush: one all-or-nothing ``add_metering`` per app.

        Each app's counters go out as numbered batches, in order. A batch that failed stays
        queued with its number and is retried as it was, first (the state skips it if it was
        applied after all, e.g. when only the reply was lost), so nothing is counted twice or
        lost; counters gathered meanwhile wait in one batch per hour behind it.
        """
        if getattr(self, "_metering_pending", None) is None:
            self._metering_pending: dict[int, list[dict]] = {}  # app id -> batches, oldest first
            self._metering_seq = 0
            # One flush at a time: stop() flushes while the loop's last round may still be writing.
            self._metering_lock = asyncio.Lock()
        async with self._metering_lock:
            await self._flush_traffic_locked()

    async def _flush_traffic_locked(self) -> None:
        pending = self._metering_pending
        now = time.monotonic()
        elapsed, self._flushed_at = now - self._flushed_at, now
        hour = int(time.time()) // 3600
        taken = self.hub.take_traffic()
        metrics.fold_traffic(taken)  # the same counts billing gets: /metrics and the Usage page agree
        for app_id in taken.keys() | set(self.hub.apps()):
            traffic = taken.get(app_id) or AppTraffic()
            counts = traffic.counts()  # in TRAFFIC_FIELDS order
            # Tabs connected here for the interval: the HTTP-polling comparison counts one request per tab-second.
            tab_seconds = round(self.hub.app_tabs(app_id) * elapsed, 3)
            batches = pending.setdefault(app_id, [])
            last = batches[-1] if batches else None
            if last is not None and not last["tried"] and last["hour"] == hour:
                last["counts"] = [a + b for a, b in zip(last["counts"], counts, strict=True)]
                last["tab_seconds"] = round(last["tab_seconds"] + tab_seconds, 3)
            else:
                self._metering_seq += 1
                batches.append({"seq": self._metering_seq, "hour": hour, "counts": counts,
                                "tab_seconds": tab_seconds, "tried": False})
        for app_id in list(pending):
            batches = pending[app_id]
            while batches:
                batch = batches[0]
                batch["tried"] = True  # from now on its outcome may be unknown: retried only as is
                await self.state.add_metering(app_id, batch["hour"], *batch["counts"], batch["tab_seconds"],
                                              seq=batch["seq"])
                batches.pop(0)
            del pending[app_id]
        for app_id in self.hub.apps():
            sockets, tabs = await self.state.connection_counts(app_id)
            await self.state.note_peaks(app_id, hour, sockets, tabs)
            metrics.note_app_connections(app_id, sockets)
        metrics.after_flush()
        for hook in self.flush_hooks:
            try:
                await hook()
            except Exception:  # noqa: BLE001 - an observer never stops the counters
                log.exception("flush hook failed")


def _history_message(frame: str, epoch: str, offset: int) -> dict[str, Any]:
    """One message of the history API: the frame's fields but the channel."""
    fields = orjson.loads(frame)
    message = {"event": fields["event"], "data": fields.get("data")}
    if "user_id" in fields:
        message["user_id"] = fields["user_id"]
    message["position"] = f"{epoch}:{offset}"
    return message


_node: Node | None = None
_starting: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None


async def get_node() -> Node:
    """The process's node, started on first use in the running event loop."""
    global _node, _starting
    loop = asyncio.get_running_loop()
    if _node is not None and _node.loop is loop:
        return _node
    if _starting is None or _starting[0] is not loop:
        _starting = (loop, asyncio.Lock())
    async with _starting[1]:
        if _node is None or _node.loop is not loop:
            node = Node()
            await node.start()
            _node = node
    return _node


def current_node() -> Node | None:
    return _node
