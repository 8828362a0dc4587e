"""Parsing of an app's allowed-origins list: one origin or wildcard per line."""

import ipaddress
import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

MAX_ORIGINS = 100
# A DNS name or IPv4 address: dot-separated labels of letters, digits and inner hyphens.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")

HELP = ("One per line: an exact origin such as https://app.example.com or http://localhost:3000, "
        "a wildcard such as *.example.com (any subdomain, any scheme), or * for any origin. "
        "Leave empty to accept connections from any origin.")


def parse_origin(line: str) -> str:
    """One allowed-origins entry, normalised (lower case, no trailing slash); ValueError says why not."""
    entry = line.strip().lower().rstrip("/")
    if entry == "*":
        return entry
    if entry.startswith("*."):
        if not _HOSTNAME.match(entry[2:]):
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
    host = parts.hostname or ""
    if not (_HOSTNAME.match(host) or _is_ipv6_literal(parts.netloc)):
        raise ValueError(f"{host or 'the host'} is not a valid host name")
    return entry


def _is_ipv6_literal(netloc: str) -> bool:
    if not netloc.startswith("["):
        return False
    try:
        ipaddress.IPv6Address(netloc[1:netloc.index("]")])
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
