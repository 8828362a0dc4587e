"""Log lines an operator can search: JSON on request, with who it was about, never a secret.

``TABCAST_LOG_FORMAT=json`` (settings.LOGGING) writes one JSON object per line::

    {"timestamp": "2026-11-29T15:04:05.123456+00:00", "level": "WARNING", "logger": "service.realtime.consumer",
     "event": "frames answered with pusher:error: flood started, ...", "app_id": 7, "socket_id": "123.456",
     "pid": 4242, "flood": "bad_frames", "flood_state": "start", "count": 100}

``app_id``, ``socket_id`` and ``request_id`` come from context variables: the consumer sets the
socket's (:func:`bind_socket`, once at connect: each socket runs in its own task, so everything
logged while handling its frames carries them) and :class:`RequestId` an HTTP request's (taken
from a sane ``X-Request-Id`` header or made up, and echoed back in the response). Extra fields a
line was logged with (``extra={...}``) are fields of the object too (the flood reporter's
``flood``, ``flood_state``, ``count``).

Secrets never reach the output, in either format: :class:`RedactFilter` (on the handler, so it
sees every line) rewrites the message, the traceback and extra fields: app secrets and request
signatures (any run of 32+ hex digits, ``auth``/``auth_signature``/``secret``/``password``/
``token``... values), ``Authorization``/``Bearer``/``Basic`` credentials, passwords in URLs,
password-reset and invitation links, Stripe keys. ``django.request``'s ``request`` extra (whose
repr holds the query string, signature included) becomes "METHOD path".

:class:`FloodFilter` (on the ``django.request`` and ``uvicorn.error`` loggers) lets a line
through until the same kind of line comes in a flood (a scanner's 4xx, malformed requests),
then reports the flood instead (``service/realtime/floods.py``).
"""

import contextvars
import itertools
import logging
import re
import secrets

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from service.realtime.floods import Flood

app_id_var: contextvars.ContextVar = contextvars.ContextVar("tabcast_app_id", default=None)
socket_id_var: contextvars.ContextVar = contextvars.ContextVar("tabcast_socket_id", default=None)
request_id_var: contextvars.ContextVar = contextvars.ContextVar("tabcast_request_id", default=None)

CONTEXT_FIELDS = ("app_id", "socket_id", "request_id")


def bind_socket(app_id: int, socket_id: str) -> None:
    """Label what the current task logs from now on with this socket (the consumer's task)."""
    app_id_var.set(app_id)
    socket_id_var.set(socket_id)


# --- redaction ---

REDACTED = "[redacted]"
SECRET_NAMES = ("auth_signature", "signature", "secret", "password", "passwd", "token", "authorization",
                "api_key", "apikey", "auth", "sessionid", "csrftoken", "csrfmiddlewaretoken", "cookie",
                "private_key", "shared_secret")
# auth_key, auth_timestamp and auth_version (signed requests) are not secret
_NAMES = "|".join(name + r"(?![_-](?:key|timestamp|version)\b)" if name == "auth" else name
                  for name in sorted(SECRET_NAMES, key=len, reverse=True))
_PATTERNS = [
    (re.compile(r"(?i)\b(Bearer|Basic|Digest)\s+[A-Za-z0-9._~+/=:-]+"), r"\1 " + REDACTED),
    # name=value, name: value, "name": "value" (also inside a JSON string: \"auth\":\"...\"), where the name
    # is one of SECRET_NAMES, maybe with a prefix or suffix (client_secret, X-Auth-Token; not "Unauthorized")
    (re.compile(r'(?i)((?<![A-Za-z0-9])(?:[A-Za-z]+[_-])*(?:' + _NAMES + r')(?:[_-][A-Za-z]+)*\\?["\']?\s*[:=]\s*'
                r'\\?["\']?)(?!\[redacted\])[^"\'\s&,;}\]\\]+'), r"\1" + REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@"), r"\1" + REDACTED + "@"),  # user:password@
    # password-reset links (uid/token; then uid/set-password) and invitations
    (re.compile(r"(/(?:password-reset|reset)/)[^\s/?\"']+/[^\s/?\"']+"), r"\1" + REDACTED),
    (re.compile(r"(/(?:invite|invitation)/)[^\s/?\"']+"), r"\1" + REDACTED),
    (re.compile(r"\b(?:sk|rk|pk|whsec)_[A-Za-z0-9_]{8,}"), REDACTED),  # Stripe keys and signing secrets
    (re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32,}(?![0-9a-fA-F])"), REDACTED),  # secrets, HMACs, tokens
    (re.compile(r"\b[0-9a-z]{1,13}-[0-9a-f]{20,}\b"), REDACTED),  # Django's password-reset token
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(secret in lowered for secret in SECRET_NAMES)


_RECORD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactFilter(logging.Filter):
    """Scrubs the message and extra fields of every record (attach to the handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            message = record.getMessage()
            clean = redact(message)
            if clean != message or record.args:
                record.msg, record.args = clean, None
        for name, value in list(record.__dict__.items()):
            if name in _RECORD_ATTRS or name in CONTEXT_FIELDS or name == "no_context":
                continue
            if name == "request" and hasattr(value, "method"):  # django.request: its repr has the query string
                record.request = f"{value.method} {redact(getattr(value, 'path', ''))}"
            elif _is_secret_name(name):
                setattr(record, name, REDACTED)
            elif isinstance(value, str):
                setattr(record, name, redact(value))
            elif not isinstance(value, (int, float, bool, type(None))):
                setattr(record, name, redact(str(value)))
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class ContextFilter(logging.Filter):
    """Adds app_id / socket_id / request_id from the context, when set (an explicit extra wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "no_context", False):
            return True
        for name, var in (("app_id", app_id_var), ("socket_id", socket_id_var), ("request_id", request_id_var)):
            value = var.get()
            if value is not None and getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class PlainFormatter(logging.Formatter):
    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


class JsonFormatter(_JsonFormatter):
    """One object per line: timestamp, level, logger, event, then the context and extra fields."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "message": "event",
                                            "process": "pid"})
        kwargs.setdefault("timestamp", True)
        super().__init__("%(levelname)s %(name)s %(message)s %(process)d", *args, **kwargs)

    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info) -> str:
        return redact(super().formatStack(stack_info))

    def process_log_record(self, log_data: dict) -> dict:
        ordered = {"timestamp": log_data.pop("timestamp", None)}
        for name in ("level", "logger", "event", *CONTEXT_FIELDS, "pid"):
            if name in log_data:
                ordered[name] = log_data.pop(name)
        log_data.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
        log_data.pop("no_context", None)
        ordered.update(log_data)
        return ordered


# --- floods of the same line (configured on loggers that write one line per bad request) ---


_QUOTED = re.compile(r"'[^']*'")


class NoTraceback(logging.Filter):
    """Keep the line, drop the traceback: for a client's error the server answered as it should
    (Django logs a made-up Host header with the whole stack of the refusal)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = record.exc_text = None
        return True


class FloodFilter(logging.Filter):
    """Passes records until the same kind (logger + message template) comes in a flood."""

    def __init__(self, what: str = "log lines", threshold: int = 20, window: float = 10.0):
        super().__init__()
        self.what, self.threshold, self.window = what, threshold, window
        self._floods: dict[str, Flood] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "flood", None) is not None:
            return True  # the flood's own lines
        flood = self._floods.get(record.name)
        if flood is None:
            flood = self._floods[record.name] = Flood(
                f"log:{record.name}", f"{self.what} ({record.name})", record.name,
                threshold=self.threshold, window=self.window)
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        template = _QUOTED.sub("'...'", template)  # "Invalid HTTP_HOST header: 'x'..." is one kind, whatever x
        status = getattr(record, "status_code", None)
        key = f"{status} {template}" if status is not None else template
        return flood.hit(key[:80], record.getMessage())


# --- request ids ---

_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Made-up ids: 8 random hex digits per process, then a counter (cheaper than 8 random bytes each).
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count(1)


class RequestId:
    """ASGI middleware (HTTP): a request id for the log lines of the request, echoed as X-Request-Id.

    A client's (or proxy's) ``X-Request-Id`` is kept if it is 1-128 characters of
    ``[A-Za-z0-9._:-]``; otherwise one is made up (16 hex digits: the process's random prefix and
    a counter).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = (b"x-request-id", begin_request(scope).encode())

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        return await self.app(scope, receive, send_with_id)


def begin_request(scope) -> str:
    """The request's id (the client's sane ``X-Request-Id``, else a new one), set for its log lines.

    The fast publish path (service/api/fast.py) calls it itself and adds the header to its own
    answer: as a middleware around it, this cost ~6 µs per publish.
    """
    request_id = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_ID.fullmatch(candidate):
                request_id = candidate
            break
    if request_id is None:
        request_id = f"{_ID_PREFIX}{next(_ids):08x}"
    # Each request runs in a task of its own (uvicorn, daphne), so what is set here is seen by
    # that request only and needs no reset.
    request_id_var.set(request_id)
    path = scope["path"]
    if path.startswith("/apps/"):  # the app the request addresses (signed API requests)
        app_id = path[6:].partition("/")[0]
        if app_id.isdigit() and len(app_id) < 20:
            app_id_var.set(int(app_id))
    return request_id
