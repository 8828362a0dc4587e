"""The channel-name grammar: kinds, validation, and safe Channels group names."""

import functools
import hashlib
import re
from enum import Enum

USER_CHANNEL_PREFIX = "#server-to-user-"
# Always fullmatch: with "$", re.match accepted "room\n" (a "$" also matches before a final newline).
_NAME_RE = re.compile(r"[-a-zA-Z0-9_=@,.;]+")


class Kind(str, Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    ENCRYPTED = "private-encrypted"
    PRESENCE = "presence"
    USER = "user"


def kind_of(channel: str) -> Kind:
    """Classify a channel by prefix, most specific first (as pusher-js does)."""
    if channel.startswith("private-encrypted-"):
        return Kind.ENCRYPTED
    if channel.startswith("private-"):
        return Kind.PRIVATE
    if channel.startswith("presence-"):
        return Kind.PRESENCE
    if channel.startswith(USER_CHANNEL_PREFIX):
        return Kind.USER
    return Kind.PUBLIC


def needs_auth(channel: str) -> bool:
    return kind_of(channel) in (Kind.PRIVATE, Kind.ENCRYPTED, Kind.PRESENCE)


def is_cache(channel: str) -> bool:
    """cache-, private-cache-, private-encrypted-cache-, presence-cache- channels keep their last event."""
    return channel.startswith(("cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-"))


def invalid_reason(channel: object, max_length: int) -> str | None:
    """Why a channel name is not acceptable from a client or an API call, or None if it is."""
    if not isinstance(channel, str) or not channel:
        return "Channel name must be a non-empty string"
    if len(channel) > max_length:
        return f"Channel name is longer than {max_length} characters"
    name = channel[len(USER_CHANNEL_PREFIX):] if channel.startswith(USER_CHANNEL_PREFIX) else channel
    if not name or not _NAME_RE.fullmatch(name):
        return "Channel name may contain only A-Z a-z 0-9 _ - = @ , . ;"
    return None


def user_channel(user_id: str) -> str:
    return USER_CHANNEL_PREFIX + user_id


@functools.lru_cache(maxsize=16384)  # every publish asks: the hash costs ~1 µs, the cache ~0.1
def group_name(app_id: int, channel: str) -> str:
    """The Channels group carrying one app's channel between processes.

    Channels group names allow only ASCII letters, digits, ``-_.`` and fewer than 100
    characters, while Pusher names allow ``=@,.;#`` and run to 200: so the channel is
    hashed. The app id is part of the name, so no app can ever join another app's group.
    """
    digest = hashlib.blake2b(channel.encode(), digest_size=20).hexdigest()
    return f"tc.{int(app_id)}.{digest}"


CONTROL_GROUP = "tc.control"
