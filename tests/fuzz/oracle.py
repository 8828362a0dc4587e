"""What a Pusher protocol 7 server must answer to any client frame: the fuzz tests' oracle.

Written from the protocol (``/work/shared/reference/pusher-protocol.md`` sections 1.6-4.2 and
``docs/protocol.md``), not from the consumer: soft errors are ``pusher:error`` with code 4300
(malformed frame, unknown event) or 4301 (client event refused, message too large), bad
subscriptions are ``pusher:subscription_error`` (status 4009 for a bad name, 401 for a bad
signature), a failed signin is a ``pusher:error`` 4009 followed by a close with 4009.

Where valid JSON is outside what a JSON parser must accept (lone surrogates, integers beyond
64 bits, NaN/Infinity, nesting deeper than 1,000 levels) the server may either refuse the frame
as invalid JSON (4300) or treat it normally: both outcomes are listed.
"""

import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

MAX_CHANNEL_NAME = 200
MAX_EVENT_NAME = 200
MAX_USER_ID = 128
MAX_PRESENCE_USER_BYTES = 1024
MAX_TABS = 1000
USER_PREFIX = "#server-to-user-"
NAME = re.compile(r"[-a-zA-Z0-9_=@,.;]+")  # used with fullmatch: nothing may follow, not even "\n"

INVALID = 4300
CLIENT_EVENT_REJECTED = 4301
UNAUTHORIZED = 4009


def sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Expect:
    """One frame the server must send: its event, and the fields that identify it."""

    event: str
    code: int | None = None  # pusher:error data.code
    channel: str | None = None
    status: int | None = None  # pusher:subscription_error data.status

    def matches(self, frame: dict) -> bool:
        if frame.get("event") != self.event:
            return False
        if self.channel is not None and frame.get("channel") != self.channel:
            return False
        data = frame.get("data")
        if isinstance(data, str) and self.event.startswith("pusher"):
            try:
                data = json.loads(data)
            except ValueError:
                pass
        if self.code is not None and not (isinstance(data, dict) and data.get("code") == self.code):
            return False
        if self.status is not None and not (isinstance(data, dict) and data.get("status") == self.status):
            return False
        return True

    def __str__(self):
        parts = [self.event] + [f"{k}={v!r}" for k, v in (("code", self.code), ("channel", self.channel),
                                                          ("status", self.status)) if v is not None]
        return " ".join(parts)


@dataclass
class Outcome:
    """One acceptable answer: these frames in order, then optionally a close with ``close``."""

    frames: list[Expect]
    close: int | None = None
    apply: Callable[[], None] | None = None  # the state change this answer implies
    optional: set[str] = field(default_factory=set)  # events that may follow (cache_miss)

    def __str__(self):
        text = ", ".join(map(str, self.frames)) or "(nothing)"
        return text + (f", then close {self.close}" if self.close else "")


def error(code: int) -> Outcome:
    return Outcome([Expect("pusher:error", code=code)])


class Ambiguous(Exception):
    """Valid JSON a strict parser may refuse."""


def _strict_check(value: Any, depth: int = 0) -> None:
    if depth > 1000:
        raise Ambiguous("deep")
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not -(2 ** 63) <= value < 2 ** 64:
            raise Ambiguous("big int")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Ambiguous("nan")
    elif isinstance(value, str):
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise Ambiguous("surrogate")
    elif isinstance(value, list):
        for item in value:
            _strict_check(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _strict_check(key, depth + 1)
            _strict_check(item, depth + 1)


def parse(text: str) -> tuple[bool, Any, bool]:
    """(parsed?, value, ambiguous?) for a JSON text."""
    try:
        value = json.loads(text)
    except RecursionError:
        return False, None, True
    except ValueError:
        return False, None, False
    try:
        _strict_check(value)
    except (Ambiguous, RecursionError):
        return True, value, True
    return True, value, False


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def valid_name(name: Any) -> str | None:
    """Why a channel name is refused (the protocol's grammar), or None."""
    if not isinstance(name, str) or not name:
        return "empty"
    if len(name) > MAX_CHANNEL_NAME:
        return "long"
    rest = name[len(USER_PREFIX):] if name.startswith(USER_PREFIX) else name
    if not rest or not NAME.fullmatch(rest):
        return "chars"
    return None


def kind(name: str) -> str:
    if name.startswith("private-encrypted-"):
        return "encrypted"
    if name.startswith("private-"):
        return "private"
    if name.startswith("presence-"):
        return "presence"
    if name.startswith(USER_PREFIX):
        return "user"
    return "public"


def is_cache(name: str) -> bool:
    return name.startswith(("cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-"))


class PusherModel:
    """One client connection as the protocol sees it: its socket id, channels and user."""

    def __init__(self, key: str, secret: str, socket_id: str, max_message_bytes: int, client_events: bool = True):
        self.key, self.secret, self.socket_id = key, secret, socket_id
        self.max_message_bytes = max_message_bytes
        self.client_events = client_events
        self.channels: dict[str, Any] = {}
        self.user: dict | None = None
        self.closed = False

    @property
    def message_limit(self) -> int:
        return self.max_message_bytes * 2 + 4096

    def token(self, message: str) -> str:
        return f"{self.key}:{sign(self.secret, message)}"

    # --- frames ---

    def answer(self, text: str) -> list[Outcome]:
        """Every acceptable answer to one text frame."""
        if len(text) > self.message_limit:
            return [error(CLIENT_EVENT_REJECTED)]
        parsed, value, ambiguous = parse(text)
        if not parsed:
            return [error(INVALID)]
        outcomes = self._envelope(value)
        if ambiguous:
            outcomes = [error(INVALID)] + outcomes
        return outcomes

    def _envelope(self, frame: Any) -> list[Outcome]:
        if not isinstance(frame, dict):
            return [error(INVALID)]
        event = frame.get("event")
        if not isinstance(event, str) or not event:
            return [error(INVALID)]
        channel = frame.get("channel")
        if channel is not None and not isinstance(channel, str):
            return [error(INVALID)]
        data = frame.get("data")
        extra = []
        if isinstance(data, str) and event.startswith("pusher:") and data[:1] in ("{", "["):
            parsed, data, ambiguous = parse(data)  # clients may double-encode system events
            if not parsed:
                return [error(INVALID)]
            if ambiguous:
                extra = [error(INVALID)]
        return extra + self._event(event, channel, data)

    def _event(self, event: str, channel: str | None, data: Any) -> list[Outcome]:
        if event == "pusher:ping":
            return [Outcome([Expect("pusher:pong")])]
        if event == "pusher:pong":
            return [Outcome([])]
        if event == "pusher:subscribe":
            return self._subscribe(data)
        if event == "pusher:unsubscribe":
            name = data.get("channel") if isinstance(data, dict) else None
            if not isinstance(name, str):
                return [error(INVALID)]
            return [Outcome([], apply=lambda: self.channels.pop(name, None))]
        if event == "pusher:signin":
            return self._signin(data)
        if event == "tabcast:tabs":
            tabs = data.get("tabs") if isinstance(data, dict) else None
            if isinstance(tabs, int) and not isinstance(tabs, bool) and 0 <= tabs <= MAX_TABS:
                return [Outcome([])]
            return [error(INVALID)]
        if event.startswith("client-"):
            return self._client_event(event, channel, data)
        return [error(INVALID)]

    def _subscribe(self, data: Any) -> list[Outcome]:
        if not isinstance(data, dict) or not isinstance(data.get("channel"), str):
            return [error(INVALID)]
        name = data["channel"]
        reason = valid_name(name)
        if reason:
            return [Outcome([Expect("pusher:subscription_error", channel=name, status=4009)])]
        refused = Outcome([Expect("pusher:subscription_error", channel=name, status=401)])
        already = name in self.channels
        if kind(name) == "user":
            if self.user is None or name != USER_PREFIX + self.user["id"]:
                return [refused]
            return [Outcome([Expect("pusher_internal:subscription_succeeded", channel=name)])]
        member = None
        if kind(name) in ("private", "encrypted", "presence"):
            channel_data = data.get("channel_data")
            if channel_data is not None and not isinstance(channel_data, str):
                # An object where a string is due: what it signs is undefined, so the tests never
                # sign one; an unsigned one must be refused.
                return [refused]
            message = f"{self.socket_id}:{name}" + (f":{channel_data}" if channel_data else "")
            if data.get("auth") != self.token(message):
                return [refused]
            if kind(name) == "presence":
                verdict, member = self._member(channel_data)
                too_large = Outcome([Expect("pusher:subscription_error", channel=name, status=4301)])
                if verdict == "refused":
                    return [refused]
                if verdict == "too large":
                    return [too_large]
                if verdict == "boundary":
                    return [self._succeeded(name, member, already), too_large]
        return [self._succeeded(name, member, already)]

    def _succeeded(self, name: str, member: Any, already: bool) -> Outcome:
        if already:
            return Outcome([Expect("pusher_internal:subscription_succeeded", channel=name)])
        return Outcome([Expect("pusher_internal:subscription_succeeded", channel=name)],
                       optional={"pusher:cache_miss"} if is_cache(name) else set(),
                       apply=lambda: self.channels.__setitem__(name, member))

    def _member(self, channel_data: str | None) -> tuple[str, Any]:
        """("ok" | "refused" | "too large" | "boundary" (too close to the size limit to call), user id)."""
        if channel_data is None:
            return ("ok", self.user["id"]) if self.user is not None else ("refused", None)
        parsed, value, _ = parse(channel_data)
        user_id = value.get("user_id") if parsed and isinstance(value, dict) else None
        if not isinstance(user_id, (str, int)) or isinstance(user_id, bool) or user_id == "" \
                or len(str(user_id)) > MAX_USER_ID:
            return "refused", None
        info = value.get("user_info")
        if info is not None:
            size = json_size(info)
            if abs(size - MAX_PRESENCE_USER_BYTES) < 64:
                return "boundary", user_id
            if size > MAX_PRESENCE_USER_BYTES:
                return "too large", None
        return "ok", user_id

    def _signin(self, data: Any) -> list[Outcome]:
        drop = Outcome([Expect("pusher:error", code=UNAUTHORIZED)], close=UNAUTHORIZED,
                       apply=lambda: setattr(self, "closed", True))
        user_data = data.get("user_data") if isinstance(data, dict) else None
        if not isinstance(user_data, str):
            return [drop]
        if data.get("auth") != self.token(f"{self.socket_id}::user::{user_data}"):
            return [drop]
        parsed, value, _ = parse(user_data)
        user_id = value.get("id") if parsed and isinstance(value, dict) else None
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not user_id or len(user_id) > 200 or valid_name(user_id):
            return [drop]

        def signed_in():
            self.user = {**value, "id": user_id}
        return [Outcome([Expect("pusher:signin_success")], apply=signed_in)]

    def _client_event(self, event: str, channel: str | None, data: Any) -> list[Outcome]:
        reject = error(CLIENT_EVENT_REJECTED)
        if not self.client_events:
            return [reject]
        if channel is None or kind(channel) not in ("private", "encrypted", "presence"):
            return [reject]
        if channel not in self.channels:
            return [reject]
        if len(event) > MAX_EVENT_NAME:
            return [reject]
        size = len(data) if isinstance(data, str) else json_size(data)
        if abs(size - self.max_message_bytes) < 64:
            return [reject, Outcome([])]
        if size > self.max_message_bytes:
            return [reject]
        return [Outcome([])]  # relayed to the channel's other subscribers, not back to the sender


def first_match(outcomes: list[Outcome], frames: list[dict], closed: int | None) -> Outcome | None:
    """The outcome that ``frames`` (then a close with ``closed``, or none) realise, if any."""
    for outcome in outcomes:
        rest = [f for f in frames if f.get("event") not in outcome.optional]
        if len(rest) == len(outcome.frames) and all(e.matches(f) for e, f in zip(outcome.frames, rest)) \
                and outcome.close == closed:
            return outcome
    return None
