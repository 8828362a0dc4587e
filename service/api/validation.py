"""The rules for publish payloads, as plain functions: one implementation for every path.

The DRF serializers (which document the payloads in the OpenAPI schema) and the event-loop
fast path both validate through here. A DRF serializer instance costs ~0.4 ms to build
(it deep-copies its fields), more than the rest of a publish together.
"""

import re
from typing import Any

import orjson
from django.conf import settings

from service.realtime import channel_names
from service.realtime.channel_names import Kind, kind_of

from .errors import ApiError

SOCKET_ID_RE = re.compile(r"[0-9]+\.[0-9]+")  # always fullmatch: "$" would let "1.2\n" through
PUBLISH_INFO = frozenset({"user_count", "subscription_count"})
RESERVED_EVENT_PREFIXES = ("pusher:", "pusher_internal:")


def json_body(body: bytes, content_type: str | None) -> dict:
    """The JSON object a publish request carries: the one rule both API paths apply.

    Content-Type must be ``application/json`` (parameters such as ``charset`` are ignored;
    ``application/*+json`` is accepted too) or absent, else 415. The body must be non-empty
    UTF-8 JSON (else 400 "JSON parse error - ...", which also covers nesting deeper than
    orjson's 1024 levels) holding an object (else 400).
    """
    media = (content_type or "").partition(";")[0].strip().lower()
    if media and media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise ApiError(415, f"Unsupported Content-Type {media[:60]!r}: send Content-Type: application/json")
    if not body or body.isspace():
        raise ApiError(400, "The request body is empty: send a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"JSON parse error - {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return payload


def _invalid(field: str, message: str):
    return ApiError(400, f"{field}: {message}" if field else message)


def channel(name: Any, field: str = "channel") -> str:
    reason = channel_names.invalid_reason(name, settings.TABCAST["MAX_CHANNEL_NAME"])
    if reason:
        raise _invalid(field, f"{reason}: {str(name)[:60]!r}")
    return name


def info(value: Any, allowed=PUBLISH_INFO, field: str = "info") -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str):
        raise _invalid(field, "Not a valid string.")
    attributes = [a for a in value.split(",") if a]
    unknown = [a for a in attributes if a not in allowed]
    if unknown:
        raise _invalid(field, f"Unknown info attribute(s): {', '.join(unknown)}")
    return attributes


def event(app, payload: Any, single_channel: bool = False) -> dict:
    """A publish of one event: {"name", "data" (a string), "channels", "socket_id", "info"}."""
    if not isinstance(payload, dict):
        raise _invalid("", "Invalid data. Expected a dictionary.")
    name = payload.get("name")
    if name is None:
        raise _invalid("name", "This field is required.")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("name", "This field may not be blank." if isinstance(name, str) else "Not a valid string.")
    limit = settings.TABCAST["MAX_EVENT_NAME"]
    if len(name) > limit:
        raise _invalid("name", f"Ensure this field has no more than {limit} characters.")
    if name.startswith(RESERVED_EVENT_PREFIXES):
        raise _invalid("name", "Event names starting with pusher: are reserved")
    if "data" not in payload:
        raise _invalid("data", "This field is required.")
    socket_id = payload.get("socket_id")
    if socket_id is not None and (not isinstance(socket_id, str) or not SOCKET_ID_RE.fullmatch(socket_id)):
        raise _invalid("socket_id", "socket_id must look like 123.456")
    channels = _channels(payload, single_channel)
    data = payload["data"]
    if not isinstance(data, str):
        try:
            data = orjson.dumps(data).decode()
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (254 levels)
            raise _invalid("data", "JSON nested too deeply") from None
    size = len(data) if data.isascii() else len(data.encode())
    if size > app.max_message_bytes:
        raise ApiError(413, f"Event data is {size} bytes; the limit for this app is {app.max_message_bytes}")
    return {"name": name, "data": data, "channels": channels, "socket_id": socket_id,
            "info": info(payload.get("info"))}


def _channels(payload: dict, single_channel: bool) -> list[str]:
    if single_channel:
        if "channel" not in payload:
            raise _invalid("", "Each batch event needs one 'channel'")
        names = [payload["channel"]]
    elif payload.get("channels") is not None:
        names = payload["channels"]
        if not isinstance(names, list):
            raise _invalid("channels", "Expected a list of items.")
    else:
        names = [payload["channel"]] if "channel" in payload else []
    if not names:
        raise _invalid("", "Give 'channels' (a list) or 'channel'")
    limit = settings.TABCAST["MAX_CHANNELS_PER_PUBLISH"]
    if len(names) > limit:
        raise _invalid("", f"At most {limit} channels per event")
    field = "channels" if not single_channel else "channel"
    if len(names) == 1:
        names = [channel(names[0], field)]
    else:
        names = list(dict.fromkeys(channel(c, field) for c in names))
    if len(names) > 1 and any(kind_of(c) == Kind.ENCRYPTED for c in names):
        raise _invalid("", "Encrypted channels cannot be published to with other channels")
    return names


def batch(app, payload: Any) -> list[dict]:
    """A batch: up to 10 events, each to exactly one channel."""
    events = payload.get("batch") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise _invalid("batch", "This field is required." if events is None else "Expected a list of items.")
    if not events:
        raise _invalid("batch", "The batch is empty")
    limit = settings.TABCAST["MAX_BATCH_EVENTS"]
    if len(events) > limit:
        raise _invalid("batch", f"At most {limit} events per batch")
    return [event(app, item, single_channel=True) for item in events]


def simple_event(app, payload: Any) -> dict:
    """A ``/publish`` body, which calls the event ``event``."""
    payload = dict(payload) if isinstance(payload, dict) else {}
    if "event" in payload:
        payload["name"] = payload.pop("event")
    return event(app, payload)
