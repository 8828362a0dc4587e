"""HMAC signatures of the Pusher protocol, always compared in constant time."""

import hashlib
import hmac
from collections.abc import Iterable


def sign(secret: str, message: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` keyed by ``secret``."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def matches(secrets: Iterable[str], message: str, signature: str) -> bool:
    """True if ``signature`` is the HMAC of ``message`` under any of ``secrets``."""
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, i.e. a server
    # error, for a junk signature from a client). tests/fuzz found it.
    given = signature.encode("utf-8", "surrogatepass")
    ok = False
    for secret in secrets:
        # No early exit: the time taken does not tell which secret matched.
        ok |= hmac.compare_digest(sign(secret, message).encode(), given)
    return ok


def channel_auth_message(socket_id: str, channel: str, channel_data: str | None) -> str:
    """String to sign for private/presence subscriptions; channel_data is signed byte for byte."""
    if channel_data:
        return f"{socket_id}:{channel}:{channel_data}"
    return f"{socket_id}:{channel}"


def user_auth_message(socket_id: str, user_data: str) -> str:
    return f"{socket_id}::user::{user_data}"


def check_token(key: str, secrets: Iterable[str], token: object, message: str) -> bool:
    """Verify an ``"<key>:<hex signature>"`` token as sent in subscribe and signin frames."""
    if not isinstance(token, str):
        return False
    given_key, sep, signature = token.partition(":")
    if not sep or not hmac.compare_digest(given_key.encode(), key.encode()):
        return False
    return matches(secrets, message, signature)


def body_md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()  # noqa: S324 - the Pusher API defines body_md5


def request_string_to_sign(method: str, path: str, params: dict[str, str]) -> str:
    """Pusher HTTP API: METHOD\\npath\\nsorted unescaped key=value pairs without auth_signature."""
    query = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "auth_signature")
    return f"{method.upper()}\n{path}\n{query}"
