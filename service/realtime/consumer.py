"""The WebSocket consumer: speaks Pusher protocol 7 for one socket, delegates to the node.

It has no per-socket channel-layer channel and joins no groups itself: group membership is
per process (see ``broker.py``), so a publish costs one layer message per process, not one
consumer dispatch per socket.
"""

import logging
import secrets
import time
from urllib.parse import parse_qs

import orjson
from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from django.conf import settings

from service.logs import bind_socket

from . import admission, channel_names, codes, floods, metrics, protocol, quotas, signatures, watchlist
from .channel_names import Kind, kind_of
from .connection import Connection
from .node import SubscribeRefused, get_node
from .outage import redis_outage
from .state import Member
from .tenancy import get_app

log = logging.getLogger(__name__)

SUPPORTED_PROTOCOLS = range(5, 8)
# Handshake refusals that are limits (also counted in tabcast_limit_rejections_total).
_LIMIT_REASONS = frozenset(("ip_sockets", "ip_connect_rate", "connection_quota", "app_connect_rate"))
MAX_TABS_REPORTED = 1000


def new_socket_id() -> str:
    return f"{secrets.randbelow(10**9) + 1}.{secrets.randbelow(10**9) + 1}"


class PusherConsumer(AsyncConsumer):
    # No per-socket channel in the channel layer: fan-out membership is per process.
    channel_layer_alias = "__tabcast_no_per_socket_layer__"

    conn: Connection | None = None
    node = None

    async def __call__(self, scope, receive, send):
        # A socket has one input, so read and dispatch in this task. Channels'
        # await_many_dispatch (built to also read a per-socket layer channel) keeps a receive
        # task and an asyncio.wait alive per idle socket: ~2.4 KB each (bench/RESULTS.md).
        self.scope, self.base_send = scope, send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            admission.release(scope)  # the per-IP slot admit() took, however the socket ended

    async def dispatch(self, message):
        # Channels >= 4.2 hops to a thread before every handler to close stale DB connections
        # (200-350 us per message). The socket path never touches the ORM, so skip it.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- lifecycle ---

    async def websocket_connect(self, message):
        await self.base_send({"type": "websocket.accept"})
        if (refused := admission.admit(self.scope)) is not None:  # per-IP sockets and connects/s
            return await self._refuse(codes.OVER_CAPACITY, refused,
                                      "ip_connect_rate" if "per second" in refused else "ip_sockets")
        key = self.scope["url_route"]["kwargs"]["key"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        version = query.get("protocol", [None])[0]
        if version is not None and not (version.isascii() and version.isdigit()
                                        and int(version) in SUPPORTED_PROTOCOLS):
            return await self._refuse(codes.UNSUPPORTED_PROTOCOL, f"Unsupported protocol version {version}",
                                      "protocol")
        app = await get_app(key=key)
        if app is None:
            return await self._refuse(codes.APP_DOES_NOT_EXIST, f"Application does not exist: {key}", "unknown_app")
        if not app.enabled:
            return await self._refuse(codes.APP_DISABLED, "Application is disabled", "app_disabled")
        origin = _header(self.scope, b"origin")
        # A page of this service itself (the SDK's worker frame, whose embedding the frame
        # page restricts to the app's origins with frame-ancestors) is always allowed.
        if not app.origin_allowed(origin) and not _same_origin(origin, _header(self.scope, b"host")):
            return await self._refuse(codes.UNAUTHORIZED, f"Origin not allowed: {origin}", "origin")
        node = await get_node()
        if not node.accepting:
            return await self._refuse(codes.RECONNECT_NOW, "Server is restarting, please reconnect", "draining")
        if app.max_connections is not None:
            sockets, _ = await node.state.connection_counts(app.id)
            if sockets >= app.max_connections:
                return await self._refuse(codes.OVER_CONNECTION_QUOTA, "Application is over connection quota",
                                          "connection_quota")
        if refused := await quotas.connect_refusal(app):  # per-app connects/s (4100)
            return await self._refuse(*refused, "app_connect_rate")
        self.node = node
        self.conn = Connection(new_socket_id(), app, self.base_send, settings.TABCAST["MAX_PENDING_BYTES"],
                               settings.TABCAST["SLOW_CLOSE_DEADLINE"])
        self.conn.origin = origin
        bind_socket(app.id, self.conn.socket_id)  # log lines of this socket's task carry its ids
        await node.connect(self.conn)
        self.conn.send(protocol.connection_established(self.conn.socket_id, settings.TABCAST["ACTIVITY_TIMEOUT"]))
        _release_headers(self.scope)

    async def _refuse(self, code: int, message: str, reason: str = "other") -> None:
        metrics.handshake_failed(reason)  # /metrics: tabcast_handshake_failures_total{reason}
        if reason in _LIMIT_REASONS:
            metrics.limit_rejected(reason)
        floods.refused_connects.hit(f"{code} {admission.client_key(self.scope)}", message)  # logged in a flood
        await self.base_send({"type": "websocket.send", "text": protocol.error(code, message)})
        await self.base_send({"type": "websocket.close", "code": code, "reason": message[:120]})

    async def websocket_disconnect(self, message):
        if self.conn is not None:
            metrics.disconnected(message.get("code", 1006))
            self.conn.closed = True
            try:
                await self.node.disconnect(self.conn)
            except Exception as exc:  # noqa: BLE001 - state backend away; its entries expire with the node TTL
                if not redis_outage.absorb(exc):
                    log.warning("cleanup of %s failed", self.conn.socket_id, exc_info=True)
        raise StopConsumer()

    # --- frames ---

    async def websocket_receive(self, message):
        conn = self.conn
        if conn is None or conn.closed:
            return
        conn.last_seen = time.monotonic()
        conn.pinged = False
        text = message.get("text")
        if text is None:
            self._error(codes.INVALID_MESSAGE, "Binary frames are not supported; send JSON text")
            return
        metrics.received(len(text) if text.isascii() else len(text.encode()))
        limit = conn.app.max_message_bytes * 2 + 4096
        if len(text) > limit:
            self._error(codes.CLIENT_EVENT_REJECTED, f"Message too large: {len(text)} bytes, the limit is {limit}")
            return
        try:
            frame = protocol.decode(text)
            await self._handle(frame)
        except protocol.ProtocolError as exc:
            self._error(exc.code, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad frame or a backend hiccup must not kill the socket
            # An outage is logged once, not per frame; a bug hit by every frame, not per frame either.
            if not redis_outage.absorb(exc) and floods.frame_failures.hit(f"app {conn.app.id}"):
                log.exception("error handling a frame on %s", conn.socket_id)
            self._error(codes.SERVER_ERROR, "A server error occurred; try again")

    async def _handle(self, frame: protocol.Frame) -> None:
        name = frame.event
        if name == "pusher:ping":
            self.conn.send(protocol.PONG)
        elif name == "pusher:pong":
            pass
        elif name == "pusher:subscribe":
            await self._subscribe(frame.data)
        elif name == "pusher:unsubscribe":
            channel = frame.data.get("channel") if isinstance(frame.data, dict) else None
            if not isinstance(channel, str):
                raise protocol.ProtocolError("pusher:unsubscribe needs data.channel")
            await self.node.unsubscribe(self.conn, channel)
        elif name == "pusher:signin":
            await self._signin(frame.data)
        elif name == protocol.TABS_EVENT:
            tabs = frame.data.get("tabs") if isinstance(frame.data, dict) else None
            if not isinstance(tabs, int) or isinstance(tabs, bool) or not 0 <= tabs <= MAX_TABS_REPORTED:
                raise protocol.ProtocolError(f"{protocol.TABS_EVENT} needs data.tabs, 0..{MAX_TABS_REPORTED}")
            await self.node.set_tabs(self.conn, tabs)
        elif name.startswith("client-"):
            await self._client_event(frame)
        else:
            raise protocol.ProtocolError(f"Unknown event: {name[:100]}")

    async def _subscribe(self, data) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("channel"), str):
            raise protocol.ProtocolError("pusher:subscribe needs data.channel")
        conn, app = self.conn, self.conn.app
        channel = data["channel"]
        reason = channel_names.invalid_reason(channel, settings.TABCAST["MAX_CHANNEL_NAME"])
        if reason:
            kind = "LimitReached" if "longer" in reason else "InvalidChannel"
            conn.send(protocol.subscription_error(channel, kind, reason, codes.SUB_INVALID_CHANNEL))
            return
        kind = kind_of(channel)
        if kind == Kind.USER:
            if conn.user_id is None or channel != channel_names.user_channel(conn.user_id):
                conn.send(protocol.subscription_error(channel, "AuthError", "Sign in as this user first",
                                                      codes.SUB_AUTH_FAILED))
            else:
                conn.send(protocol.subscription_succeeded(channel))
            return
        member = None
        if channel_names.needs_auth(channel):
            channel_data = data.get("channel_data")
            if channel_data is not None and not isinstance(channel_data, str):
                channel_data = None if channel_data == "" else orjson.dumps(channel_data).decode()
            to_sign = signatures.channel_auth_message(conn.socket_id, channel, channel_data)
            if not signatures.check_token(app.key, app.valid_secrets(), data.get("auth"), to_sign):
                conn.send(protocol.subscription_error(
                    channel, "AuthError",
                    f"Invalid signature: Expected HMAC SHA256 hex digest of {to_sign}, but got {data.get('auth')}"[:500],
                    codes.SUB_AUTH_FAILED))
                return
            if kind == Kind.PRESENCE:
                member = self._member(channel, channel_data)
                if member is None:
                    return
        try:
            await self.node.subscribe(conn, channel, member, data.get("position"))
        except SubscribeRefused as refused:
            conn.send(protocol.subscription_error(channel, refused.kind, refused.message, refused.status))

    def _member(self, channel: str, channel_data: str | None) -> Member | None:
        """The presence member from signed channel_data (or the signed-in user); None if refused."""
        conn = self.conn
        if channel_data is None:
            if conn.user_data is None:
                conn.send(protocol.subscription_error(channel, "AuthError",
                                                      "Presence channels need channel_data or a signed-in user",
                                                      codes.SUB_AUTH_FAILED))
                return None
            return Member(conn.user_data["id"], conn.user_data.get("user_info"))
        try:
            parsed = orjson.loads(channel_data)
        except orjson.JSONDecodeError:
            parsed = None
        user_id = parsed.get("user_id") if isinstance(parsed, dict) else None
        if not isinstance(user_id, (str, int)) or isinstance(user_id, bool) or user_id == "" \
                or len(str(user_id)) > 128:
            conn.send(protocol.subscription_error(channel, "AuthError",
                                                  "channel_data must be JSON with a user_id (string or number)",
                                                  codes.SUB_AUTH_FAILED))
            return None
        info = parsed.get("user_info")
        if info is not None and len(orjson.dumps(info)) > settings.TABCAST["MAX_PRESENCE_USER_BYTES"]:
            conn.send(protocol.subscription_error(
                channel, "LimitReached",
                f"user_info is larger than {settings.TABCAST['MAX_PRESENCE_USER_BYTES']} bytes",
                codes.SUB_MEMBER_TOO_LARGE))
            return None
        return Member(user_id, info)

    async def _signin(self, data) -> None:
        conn, app = self.conn, self.conn.app
        user_data = data.get("user_data") if isinstance(data, dict) else None
        if not isinstance(user_data, str):
            return await self._drop(codes.UNAUTHORIZED, "pusher:signin needs data.auth and data.user_data (a string)")
        if not signatures.check_token(app.key, app.valid_secrets(), data.get("auth"),
                                      signatures.user_auth_message(conn.socket_id, user_data)):
            return await self._drop(codes.UNAUTHORIZED, "Connection not authorized: invalid signin signature")
        try:
            parsed = orjson.loads(user_data)
        except orjson.JSONDecodeError:
            parsed = None
        user_id = parsed.get("id") if isinstance(parsed, dict) else None
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not user_id or len(user_id) > 200 \
                or channel_names.invalid_reason(user_id, 200):
            return await self._drop(codes.UNAUTHORIZED, 'The user data must contain a valid "id" field')
        await self.node.signin(conn, user_id, parsed)
        conn.send(protocol.signin_success(user_data))
        await watchlist.send_status(self.node, conn)  # the watched users' status, if it has a watchlist

    def _error(self, code: int, message: str, channel: str | None = None) -> None:
        """Answer a bad frame with pusher:error; the connection stays open."""
        self.conn.send(protocol.error(code, message, channel))
        floods.bad_frames.hit(f"app {self.conn.app.id}", f"{code} {message}")  # logged in a flood
        self.node.emit(self.conn.app.id, "error", socket_id=self.conn.socket_id, code=code, message=message,
                       channel=channel)

    async def _drop(self, code: int, message: str) -> None:
        self._error(code, message)
        self.conn.close(code, message[:120])

    async def _client_event(self, frame: protocol.Frame) -> None:
        conn, app = self.conn, self.conn.app
        channel = frame.channel

        def reject(message: str) -> None:
            self._error(codes.CLIENT_EVENT_REJECTED, message, channel)

        if not app.client_events:
            return reject("To send client events, you must enable this feature in the Settings page of "
                          "your dashboard.")
        if channel is None or not channel_names.needs_auth(channel):
            return reject("Client events are only allowed on private and presence channels")
        if channel not in conn.channels:
            return reject(f"Cannot broadcast client event (connection not subscribed to channel {channel})")
        if len(frame.event) > settings.TABCAST["MAX_EVENT_NAME"]:
            return reject(f"Event name is longer than {settings.TABCAST['MAX_EVENT_NAME']} characters")
        size = len(frame.data) if isinstance(frame.data, str) else len(orjson.dumps(frame.data))
        if size > app.max_message_bytes:
            return reject(f"Client event data is {size} bytes, the limit is {app.max_message_bytes}")
        now = time.monotonic()
        times = conn.client_event_times
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) >= settings.TABCAST["CLIENT_EVENTS_PER_SECOND"]:
            metrics.limit_rejected("client_events_per_socket")
            return reject(f"Client event rejected: more than {settings.TABCAST['CLIENT_EVENTS_PER_SECOND']} "
                          "per second")
        if refusal := quotas.client_event_refusal(app):  # message quota, per-app client events/s
            hit = quotas.message_refusal(app) or quotas.delivery_refusal(app)  # which one, for /metrics
            metrics.limit_rejected(hit.quota if hit is not None else "client_events_per_second")
            return reject(refusal)
        times.append(now)
        await self.node.client_event(conn, channel, frame.event, frame.data)


def _same_origin(origin: str | None, host: str | None) -> bool:
    """True if the Origin header names this very host (scheme aside)."""
    if not origin or not host:
        return False
    return origin.partition("://")[2].rstrip("/").lower() == host.lower()


def _release_headers(scope) -> None:
    """Free the handshake headers (~850 B) an idle socket would otherwise keep for its life.

    Read only while connecting. Cleared in place because the server and every middleware
    frame above the consumer hold the same list (through their own scope dicts).
    """
    headers = scope.get("headers")
    if isinstance(headers, list):
        headers.clear()


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None
