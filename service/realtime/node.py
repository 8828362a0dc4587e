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

from channels.layers import get_channel_layer
from django.conf import settings

from . import channel_names, codes, protocol
from .broker import LayerBroker
from .channel_names import Kind, group_name, kind_of
from .connection import Connection
from .hub import AppTraffic, Hub
from .state import CachedEvent, Member, build_state
from .tenancy import AppInfo, get_app
from .webhooks import WebhookSender

log = logging.getLogger(__name__)

PUBLISH = "tc.publish"
TERMINATE = "tc.terminate"


class SubscribeRefused(Exception):
    """A subscription the node will not make; carries the subscription_error fields."""

    def __init__(self, kind: str, message: str, status: int):
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


class Node:
    def __init__(self, layer=None, state=None):
        self.conf = settings.TABCAST
        self.hub = Hub()
        self.state = state or build_state()
        self.broker = LayerBroker(layer or get_channel_layer(), self.on_message)
        self.loop = asyncio.get_running_loop()
        self._tasks: list[asyncio.Task] = []
        self._joins: dict[tuple[int, str], asyncio.Future] = {}  # group joins in flight
        self.accepting = True
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
        self.webhooks = WebhookSender()
        await self.state.start()
        await self.broker.start()
        self._tasks = [
            self.loop.create_task(self._sweep_idle()),
            self.loop.create_task(self._flush_traffic()),
            self.loop.create_task(self._announce_departed()),
        ]

    async def stop(self) -> None:
        """Close every socket with 4200 (clients reconnect at once, elsewhere) and clean up."""
        self.accepting = False
        await self.close_all(codes.RECONNECT_NOW, "Server is restarting, please reconnect")
        for task in self._tasks:
            task.cancel()
        await self._flush_traffic_once()
        await self.broker.stop()
        await self.state.stop()
        await self.webhooks.close()

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
            except Exception:  # noqa: BLE001 - e.g. Redis away: the socket must still leave the hub
                log.warning("could not announce %s leaving %s", conn.socket_id, channel)
        if conn.user_id is not None:
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

    async def close_all(self, code: int, reason: str) -> None:
        frame = protocol.error(code, reason)
        for conn in list(self.hub.connections.values()):
            conn.send(frame)
            await conn.close(code, reason)

    # --- subscriptions ---

    async def subscribe(self, conn: Connection, channel: str, member: Member | None) -> None:
        """Subscribe an authorized socket; sends subscription_succeeded (and cache/presence frames)."""
        app = conn.app
        if channel in conn.channels:
            conn.send(protocol.subscription_succeeded(channel, await self._presence_payload(app.id, channel)
                                                      if member else None))
            return
        if member is not None:
            members = await self.state.members(app.id, channel)
            if member.key not in members and len(members) >= self.conf["MAX_PRESENCE_MEMBERS"]:
                raise SubscribeRefused("LimitReached", "The presence channel is full", codes.SUB_MEMBER_LIMIT)
        conn.channels[channel] = member
        await self._join_local(app.id, channel, conn)
        count = await self.state.add_subscription(app.id, channel, conn.socket_id)
        if count == 1:
            self.webhooks.send(app, {"name": "channel_occupied", "channel": channel})
        if member is not None:
            first = await self.state.add_member(app.id, channel, conn.socket_id, member)
            if first:
                self.webhooks.send(app, {"name": "member_added", "channel": channel, "user_id": member.user_id})
            conn.send(protocol.subscription_succeeded(channel, await self._presence_payload(app.id, channel)))
            if first:
                await self._send(app.id, channel, protocol.member_added(channel, member.user_id, member.user_info),
                                 conn.socket_id)
        else:
            conn.send(protocol.subscription_succeeded(channel))
            if app.subscription_count:
                await self._send(app.id, channel, protocol.subscription_count(channel, count))
        if channel_names.is_cache(channel):
            cached = await self.state.cache_get(app.id, channel)
            conn.send(cached.frame if cached else protocol.cache_miss(channel))
            if cached is None:
                self.webhooks.send(app, {"name": "cache_miss", "channel": channel})
        self.emit(app.id, "subscribed", socket_id=conn.socket_id, channel=channel)

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
                self.webhooks.send(app, {"name": "member_removed", "channel": channel, "user_id": member.user_id})
        elif app.subscription_count and count:
            await self._send(app.id, channel, protocol.subscription_count(channel, count))
        if count == 0:
            self.webhooks.send(app, {"name": "channel_vacated", "channel": channel})
        self.emit(app.id, "unsubscribed", socket_id=conn.socket_id, channel=channel)

    async def signin(self, conn: Connection, user_id: str, user_data: dict) -> None:
        """Bind a socket to a user: it now receives ``#server-to-user-<id>`` publishes."""
        if conn.user_id is not None and conn.user_id != user_id:
            await self._leave_local(conn.app.id, channel_names.user_channel(conn.user_id), conn)
        conn.user_id, conn.user_data = user_id, user_data
        await self._join_local(conn.app.id, channel_names.user_channel(user_id), conn)

    async def _join_local(self, app_id: int, channel: str, conn: Connection) -> None:
        """Add a local subscriber; the first one makes this process join the channel's group.

        Later subscribers that arrive while that join is in flight wait for it, so nobody is
        told "subscribed" before this process actually receives the channel's publishes.
        """
        key = (app_id, channel)
        if not self.hub.subscribe(app_id, channel, conn):
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
        if self.hub.unsubscribe(app_id, channel, conn):
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
                      except_socket: str | None = None) -> None:
        """Publish one event to channels (HTTP API); raises if the broker is unreachable."""
        for channel in channels:
            frame = protocol.event(event, channel, data)
            if channel_names.is_cache(channel):
                await self.state.cache_set(app.id, channel, CachedEvent(frame, event, data, self.conf["CACHE_TTL"]))
            await self._send(app.id, channel, frame, except_socket)
        self.hub.count_published(app.id, len(channels))
        self.emit(app.id, "published", channels=channels, event=event, bytes=len(data))

    async def client_event(self, conn: Connection, channel: str, event: str, data: Any) -> None:
        member = conn.channels.get(channel)
        user_id = member.user_id if member is not None else None
        await self._send(conn.app.id, channel, protocol.client_event(event, channel, data, user_id), conn.socket_id)
        self.hub.count_published(conn.app.id)
        webhook = {"name": "client_event", "channel": channel, "event": event, "data": data,
                   "socket_id": conn.socket_id}
        if user_id is not None:
            webhook["user_id"] = user_id
        self.webhooks.send(conn.app, webhook)
        self.emit(conn.app.id, "client_event", socket_id=conn.socket_id, channel=channel, event=event)

    async def terminate_user(self, app: AppInfo, user_id: str) -> None:
        await self.broker.send(channel_names.CONTROL_GROUP, {"type": TERMINATE, "app": app.id, "user": user_id})

    async def _send(self, app_id: int, channel: str, frame: str, except_socket: str | None = None) -> None:
        await self.broker.send(group_name(app_id, channel), {
            "type": PUBLISH, "app": app_id, "channel": channel, "frame": frame, "except": except_socket,
        })

    def on_message(self, message: dict) -> None:
        """A message from the channel layer (called by the broker's pump)."""
        kind = message.get("type")
        if kind == PUBLISH:
            self.hub.broadcast(message["app"], message["channel"], message["frame"], message.get("except"))
        elif kind == TERMINATE:
            channel = channel_names.user_channel(message["user"])
            frame = protocol.error(codes.UNAUTHORIZED, "You got disconnected by the app.")
            for conn in self.hub.subscribers(message["app"], channel):
                conn.send(frame)
                self.loop.create_task(conn.close(codes.UNAUTHORIZED, "Terminated by the app"))

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
                    await self._send(app_id, channel, protocol.member_removed(channel, member.user_id))
                    app = await get_app(app_id=app_id)
                    if app is not None:
                        self.webhooks.send(app, {"name": "member_removed", "channel": channel,
                                                 "user_id": member.user_id})
            except Exception:  # noqa: BLE001 - the next round retries
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
                if silent > timeout + grace:
                    conn.send(protocol.error(codes.PONG_NOT_RECEIVED, "Pong reply not received in time"))
                    await conn.close(codes.PONG_NOT_RECEIVED, "Pong reply not received")
                elif silent > timeout and not conn.pinged:
                    conn.pinged = True
                    conn.send(protocol.PING)

    async def _flush_traffic(self) -> None:
        while True:
            await asyncio.sleep(1)
            try:
                await self._flush_traffic_once()
            except Exception:  # noqa: BLE001 - counters are retried next round
                log.warning("could not flush traffic counters", exc_info=True)

    async def _flush_traffic_once(self) -> None:
        now = time.monotonic()
        elapsed, self._flushed_at = now - self._flushed_at, now
        hour = int(time.time()) // 3600
        taken = self.hub.take_traffic()
        for app_id in list(taken.keys() | set(self.hub.apps())):
            traffic = taken.get(app_id) or AppTraffic()
            # Tabs connected here for the interval: the HTTP-polling comparison counts one request per tab-second.
            tab_seconds = round(self.hub.app_tabs(app_id) * elapsed, 3)
            try:
                if traffic.messages or traffic.deliveries:
                    await self.state.add_traffic(app_id, traffic.messages, traffic.deliveries, traffic.bytes,
                                                 traffic.logical_deliveries, traffic.logical_bytes)
                await self.state.add_usage(app_id, hour, traffic.messages, traffic.deliveries, traffic.bytes,
                                           traffic.logical_deliveries, traffic.logical_bytes, tab_seconds)
                taken.pop(app_id, None)
            except Exception:
                # Put back what was not flushed so nothing is lost while the state backend is away.
                for unflushed_id, unflushed in taken.items():
                    mine = self.hub.traffic[unflushed_id]
                    for name in ("messages", "deliveries", "bytes", "logical_deliveries", "logical_bytes"):
                        setattr(mine, name, getattr(mine, name) + getattr(unflushed, name))
                raise
        for app_id in self.hub.apps():
            sockets, tabs = await self.state.connection_counts(app_id)
            await self.state.note_peaks(app_id, hour, sockets, tabs)
        for hook in self.flush_hooks:
            try:
                await hook()
            except Exception:  # noqa: BLE001 - an observer never stops the counters
                log.exception("flush hook failed")


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
