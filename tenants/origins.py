"""Parsing of an app's allowed-origins list: one origin or wildcard per line."""

import ipaddress
import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

MAX_ORIGINS = 100
# A DNS name or IPv4 address: dot-separated labels of letters, digits and inner hyphens.
# Every pattern here is used with fullmatch (a "$" would also match before a trailing newline).
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
# The whole of an exact origin, as a browser sends it in the Origin header: scheme://host[:port]
# with a DNS name / IPv4 address or a bracketed IPv6 address (no zone id). Entries end up in the
# frame page's Content-Security-Policy, so nothing else may pass (urlsplit alone ignores junk
# after "]" and silently drops tabs and newlines).
_ORIGIN = re.compile(r"(https?)://(?:(?P<name>[a-z0-9.-]+)|\[(?P<ipv6>[0-9a-f:.]+)\])(?::(?P<port>[0-9]{1,5}))?")

HELP = ("One per line: an exact origin such as https://app.example.com or http://localhost:3000, "
        "a wildcard such as *.example.com (any subdomain, any scheme), or * for any origin. "
        "Leave empty to accept connections from any origin.")


def parse_origin(line: str) -> str:
    """One allowed-origins entry, normalised (lower case, no trailing slash); ValueError says why not."""
    entry = line.strip().lower().rstrip("/")
    if not entry.isascii() or not entry.isprintable() or any(c.isspace() for c in entry):
        raise ValueError("an origin has no spaces, control or non-ASCII characters (use punycode for IDN hosts)")
    if entry == "*":
        return entry
    if entry.startswith("*."):
        if not _HOSTNAME.fullmatch(entry[2:]):
            raise ValueError("a wildcard must be *. followed by a domain, like *.example.com")
        return entry
    if "*" in entry:
        raise ValueError("* may only be used alone or at the start, like *.example.com")
    parts = urlsplit(entry)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("an origin starts with http:// or https:// followed by a host")
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("an origin is only scheme://host[:port], without a path, query or user")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    match = _ORIGIN.fullmatch(entry)
    host = parts.hostname or ""
    if match is None:
        raise ValueError("an origin is only scheme://host[:port]: a host name, an IPv4 address or [an IPv6 address]")
    if not (_HOSTNAME.fullmatch(match["name"] or "") or _is_ipv6(match["ipv6"])):
        raise ValueError(f"{host or 'the host'} is not a valid host name")
    if match["port"] is not None and not 0 < int(match["port"]) <= 65535:
        raise ValueError("the port must be a number from 1 to 65535")
    return entry


def _is_ipv6(address: str | None) -> bool:
    if not address:
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def clean_origins(text: str) -> str:
    """Validate every line; return the normalised, de-duplicated list as text, or raise ValidationError."""
    entries: list[str] = []
    errors: list[ValidationError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = parse_origin(line)
        except ValueError as exc:
            errors.append(ValidationError("Line %(number)s, “%(line)s”: %(reason)s.", code="invalid_origin",
                                          params={"number": number, "line": line.strip()[:80], "reason": exc}))
            continue
        if entry not in entries:
            entries.append(entry)
    if len(entries) > MAX_ORIGINS:
        errors.append(ValidationError("At most %(max)s origins.", code="too_many_origins",
                                      params={"max": MAX_ORIGINS}))
    if errors:
        raise ValidationError(errors)
    return "\n".join(entries)
