"""Watchlist events (Pusher user authentication): a signed-in socket whose ``user_data`` has a
``watchlist`` of user ids is told when those users come online or go offline.

* A user is online while it is signed in on at least one connection, cluster-wide. The state
  backend counts that (``user_online`` / ``user_offline`` / ``users_online``: a pseudo presence
  channel, ``ONLINE_CHANNEL``, so in Redis mode it is atomic across processes and a process that
  dies takes its users offline within ``NODE_TTL``, announced by whichever node reaps it).
* A watcher's socket is a local subscriber of one hidden channel per watched id,
  ``#watch-<id>`` (a name no client or API call may use). The process where a user's first
  signin (or last signout) happens publishes ``pusher_internal:watchlist_events`` there, through
  the broker, so watchers on every process get it.
* Right after ``pusher:signin_success`` the watcher gets the current status of its ids (one
  frame: ``online`` and/or ``offline`` lists), then each change. It joins the channels before
  reading the status, so no change falls between the two (a change may at most repeat a status).
* At most ``LIMIT`` ids are watched; a longer list still signs in, with a ``pusher:error`` 4302.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from . import codes, protocol
from .channel_names import invalid_reason
from .state.base import ONLINE_CHANNEL

if TYPE_CHECKING:
    from .connection import Connection
    from .node import Node

LIMIT = 100
EVENT = "pusher_internal:watchlist_events"
WATCH_PREFIX = "#watch-"  # '#' is refused in channel names except "#server-to-user-"

__all__ = ["EVENT", "LIMIT", "ONLINE_CHANNEL", "WATCH_PREFIX", "watched", "frame"]


def watch_channel(user_id: str) -> str:
    return WATCH_PREFIX + user_id


def watched(user_data: Any) -> tuple[list[str], bool]:
    """(the ids to watch, in order, de-duplicated, at most LIMIT; whether the list was longer)."""
    raw = user_data.get("watchlist") if isinstance(user_data, dict) else None
    if not isinstance(raw, list):
        return [], False
    ids: list[str] = []
    seen: set[str] = set()
    for item in raw:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or item in seen or invalid_reason(item, 200):
            continue
        if len(ids) == LIMIT:
            return ids, True
        seen.add(item)
        ids.append(item)
    return ids, False


def frame(events: list[tuple[str, list[str]]]) -> str:
    """``{"event": "pusher_internal:watchlist_events", "data": {"events": [...]}}``, empty lists left out."""
    data = {"events": [{"name": name, "user_ids": ids} for name, ids in events if ids]}
    return orjson.dumps({"event": EVENT, "data": data}).decode()


async def _announce(node: Node, app_id: int, user_id: str, name: str) -> None:
    await node._send(app_id, watch_channel(user_id), frame([(name, [user_id])]))


async def signed_in(node: Node, conn: Connection) -> None:
    """``conn`` just signed in as ``conn.user_id``: count it online (announce if it is the first
    connection of the user) and make the socket a local listener of its watched ids."""
    app_id = conn.app.id
    if await node.state.user_online(app_id, conn.socket_id, conn.user_id):
        await _announce(node, app_id, conn.user_id, "online")
    for user_id in watched(conn.user_data)[0]:
        await node._join_local(app_id, watch_channel(user_id), conn)


async def send_status(node: Node, conn: Connection) -> None:
    """After signin_success: the current status of the watched ids (and 4302 if the list was cut)."""
    ids, cut = watched(conn.user_data)
    if ids:
        online = await node.state.users_online(conn.app.id, ids)
        conn.send(frame([("online", [i for i in ids if i in online]),
                         ("offline", [i for i in ids if i not in online])]))
    if cut:
        conn.send(protocol.error(codes.WATCHLIST_LIMIT,
                                 f"Watchlist limit exceeded; only the first {LIMIT} ids are watched"))


async def signed_out(node: Node, conn: Connection, still_online: bool = False) -> None:
    """``conn`` stops being signed in as ``conn.user_id`` (it closed, or signs in again): stop
    listening for its watched ids and, unless ``still_online``, count it offline (announce if
    it was the user's last connection)."""
    if conn.user_id is None:
        return
    app_id = conn.app.id
    for user_id in watched(conn.user_data)[0]:
        await node._leave_local(app_id, watch_channel(user_id), conn)
    if not still_online and await node.state.user_offline(app_id, conn.socket_id, conn.user_id):
        await _announce(node, app_id, conn.user_id, "offline")


async def departed(node: Node, app_id: int, user_id: Any) -> None:
    """A user whose last connections were on a process that died (reaped by this node)."""
    await _announce(node, app_id, str(user_id), "offline")
