"""The Pusher protocol 7 wire format: the only module that knows how frames look.

Server frames carry ``data`` as a string (Pusher's "double encoding"): pusher-js parses it
when it holds JSON and keeps it as a string otherwise. Pure functions, no I/O.
"""

from dataclasses import dataclass
from typing import Any

import orjson

from . import codes

# Tabcast extension: a SharedWorker reports how many tabs share its socket (for metering).
TABS_EVENT = "tabcast:tabs"


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _data_string(data: Any) -> str:
    return data if isinstance(data, str) else _dumps(data)


def event(event_name: str, channel: str | None, data: Any, user_id: Any = None) -> str:
    frame: dict[str, Any] = {"event": event_name}
    if channel is not None:
        frame["channel"] = channel
    frame["data"] = _data_string(data)
    if user_id is not None:
        frame["user_id"] = user_id
    return _dumps(frame)


def connection_established(socket_id: str, activity_timeout: int) -> str:
    return event("pusher:connection_established", None, {"socket_id": socket_id, "activity_timeout": activity_timeout})


def error(code: int | None, message: str, channel: str | None = None) -> str:
    frame: dict[str, Any] = {"event": "pusher:error", "data": {"code": code, "message": message}}
    if channel is not None:
        frame["channel"] = channel
    return _dumps(frame)


PONG = _dumps({"event": "pusher:pong", "data": {}})
PING = _dumps({"event": "pusher:ping", "data": {}})


def subscription_succeeded(channel: str, presence: dict | None = None, position: str | None = None) -> str:
    """``position``: the channel stream's position the socket starts after (docs/recovery.md)."""
    frame = event("pusher_internal:subscription_succeeded", channel, {"presence": presence} if presence else {})
    return frame if position is None else f'{frame[:-1]},"position":"{position}"}}'


# Tabcast extension (docs/recovery.md): after a resume, whether the socket got every message it
# missed; also sent when a process finds a gap in a channel it cannot fill.
RESUMED_EVENT = "tabcast:resumed"


def resumed(channel: str, recovered: bool, missed: int, reason: str | None = None) -> str:
    data: dict[str, Any] = {"recovered": recovered, "missed": missed}
    if reason is not None:
        data["reason"] = reason
    return event(RESUMED_EVENT, channel, data)


def subscription_error(channel: str, kind: str, message: str, status: int) -> str:
    return _dumps({
        "event": "pusher:subscription_error",
        "channel": channel,
        "data": {"type": kind, "error": message, "status": status},
    })


def cache_miss(channel: str) -> str:
    return _dumps({"event": "pusher:cache_miss", "channel": channel})


def member_added(channel: str, user_id: Any, user_info: Any) -> str:
    data = {"user_id": user_id}
    if user_info is not None:
        data["user_info"] = user_info
    return event("pusher_internal:member_added", channel, data)


def member_removed(channel: str, user_id: Any) -> str:
    return event("pusher_internal:member_removed", channel, {"user_id": user_id})


def subscription_count(channel: str, count: int) -> str:
    return event("pusher_internal:subscription_count", channel, {"subscription_count": count})


def signin_success(user_data: str) -> str:
    return _dumps({"event": "pusher:signin_success", "data": {"user_data": user_data}})


def client_event(event_name: str, channel: str, data: Any, user_id: Any = None) -> str:
    """Client events are relayed with ``data`` as the sender gave it (pusher-js sends objects)."""
    frame: dict[str, Any] = {"event": event_name, "channel": channel, "data": data}
    if user_id is not None:
        frame["user_id"] = user_id
    return _dumps(frame)


class ProtocolError(Exception):
    """A frame the server cannot act on; answered with a pusher:error and otherwise ignored."""

    def __init__(self, message: str, code: int = codes.INVALID_MESSAGE):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Frame:
    event: str
    channel: str | None
    data: Any


def decode(text: str) -> Frame:
    """Parse a client frame; raises ProtocolError for anything that is not a Pusher envelope."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("Invalid JSON: the frame must be a JSON object") from None
    if not isinstance(obj, dict):
        raise ProtocolError("Invalid message: the frame must be a JSON object")
    name = obj.get("event")
    if not isinstance(name, str) or not name:
        raise ProtocolError("Invalid message: 'event' must be a non-empty string")
    channel = obj.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise ProtocolError("Invalid message: 'channel' must be a string")
    data = obj.get("data")
    if isinstance(data, str) and name.startswith("pusher:") and data[:1] in ("{", "["):
        # Some clients double-encode data of system events; accept both forms.
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProtocolError("Invalid message: 'data' is not valid JSON") from None
    return Frame(name, channel, data)
