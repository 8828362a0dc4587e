"""Tabcast settings: the only module that reads the environment.

With no environment at all the service runs embedded: one process, SQLite, and
in-memory channel layer and state. ``REDIS_URL`` switches the channel layer and
the shared state (presence, counts, metering) to Redis; ``DATABASE_URL`` switches
the database (e.g. ``postgres://127.0.0.1:5432/tabcast``).
"""

import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from service.realtime import redis_connect

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TABCAST_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


# Every value read from the environment is checked here, at start: a typo fails `manage.py check`
# (and `serve`) with a message naming the variable, not later with a traceback deep inside.
def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be on or off (1/0, true/false, yes/no, on/off), got {value!r}")


def _env_number(name: str, default, parse, what: str, minimum, maximum):
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    bounds = f" from {minimum} to {maximum}" if maximum is not None else f" ({minimum} or more)"
    try:
        value = parse(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {what}{bounds}, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be {what}{bounds}, got {raw!r}")
    return value


def _env_int(name: str, default: int, what: str = "a whole number", minimum: int = 0, maximum=None) -> int:
    """An integer variable, e.g. _env_int("TABCAST_NODE_TTL", 30, "a whole number of seconds", 1)."""
    return _env_number(name, default, int, what, minimum, maximum)


def _env_float(name: str, default: float, what: str = "a number of seconds", minimum: float = 0) -> float:
    return _env_number(name, default, float, what, minimum, None)


def _secret_key() -> str:
    """An explicit TABCAST_SECRET_KEY, else one generated once and kept in var/."""
    if os.environ.get("TABCAST_SECRET_KEY"):
        return os.environ["TABCAST_SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("TABCAST_DEBUG", False)
# Host names this deployment answers to. Never "*" by default: the Host header ends up in
# password-reset links, so a forged one must be refused (set it to your public host names).
ALLOWED_HOSTS = os.environ.get("TABCAST_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("TABCAST_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "service.realtime",
    "service.api",
    "service.sdk",
    "tenants",
    "billing",
    "live",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "service.urls"
ASGI_APPLICATION = "service.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "service" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tabcast.sqlite3'}"),
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several server processes may share one SQLite file in development.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "tenants:login"
LOGIN_REDIRECT_URL = "tenants:app_list"
LOGOUT_REDIRECT_URL = "tenants:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "service" / "static"]

# --- Email and HTTPS (account security) -----------------------------------------------------

# Password-reset and invitation links go out by email; how is the operator's explicit choice:
#   TABCAST_EMAIL_URL=smtp://user:password@host:587?tls=1   (smtps://... for implicit TLS on 465)
#   or TABCAST_SMTP_HOST / _PORT / _USER / _PASSWORD / _TLS / _SSL,
#   or TABCAST_EMAIL_BACKEND=<a Django email backend> (e.g. the console one, on purpose).
# Without any: the console backend under DEBUG only. Otherwise no email is sent at all (the
# password-reset page says so), never the console backend: it writes reset links to the log.
DISABLED_EMAIL_BACKEND = "tenants.mail.DisabledEmailBackend"


def _email_settings() -> dict:
    from urllib.parse import parse_qs, unquote, urlsplit

    if os.environ.get("TABCAST_EMAIL_URL"):
        url = urlsplit(os.environ["TABCAST_EMAIL_URL"])
        if url.scheme not in ("smtp", "smtps"):
            raise ImproperlyConfigured("TABCAST_EMAIL_URL must be smtp://user:password@host:port or smtps://...")
        query = {k: v[-1].lower() in ("1", "true", "yes", "on") for k, v in parse_qs(url.query).items()}
        implicit_tls = url.scheme == "smtps" or query.get("ssl", False)
        return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": url.hostname or "",
                "EMAIL_PORT": url.port or (465 if implicit_tls else 587),
                "EMAIL_HOST_USER": unquote(url.username or ""), "EMAIL_HOST_PASSWORD": unquote(url.password or ""),
                "EMAIL_USE_SSL": implicit_tls, "EMAIL_USE_TLS": not implicit_tls and query.get("tls", True)}
    if os.environ.get("TABCAST_SMTP_HOST"):
        implicit_tls = _env_bool("TABCAST_SMTP_SSL", False)
        return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": os.environ["TABCAST_SMTP_HOST"],
                "EMAIL_PORT": _env_int("TABCAST_SMTP_PORT", 465 if implicit_tls else 587, "a TCP port", 1, 65535),
                "EMAIL_HOST_USER": os.environ.get("TABCAST_SMTP_USER", ""),
                "EMAIL_HOST_PASSWORD": os.environ.get("TABCAST_SMTP_PASSWORD", ""),
                "EMAIL_USE_SSL": implicit_tls, "EMAIL_USE_TLS": not implicit_tls and _env_bool("TABCAST_SMTP_TLS", True)}
    default = "django.core.mail.backends.console.EmailBackend" if DEBUG else DISABLED_EMAIL_BACKEND
    return {"EMAIL_BACKEND": os.environ.get("TABCAST_EMAIL_BACKEND", default)}


globals().update(_email_settings())  # EMAIL_BACKEND, and EMAIL_HOST/PORT/... for SMTP
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("TABCAST_FROM_EMAIL") or "Tabcast <no-reply@tabcast.local>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Behind a TLS-terminating proxy (the docker/ deployment): trust its X-Forwarded-Proto, send
# session/CSRF cookies over HTTPS only, redirect plain HTTP to HTTPS and send HSTS. All off by
# default, so `bin/start` on http://127.0.0.1 keeps working.
if _env_bool("TABCAST_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_bool("TABCAST_SECURE_COOKIES", False)
SECURE_SSL_REDIRECT = _env_bool("TABCAST_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health probes call it over plain HTTP
SECURE_HSTS_SECONDS = _env_int("TABCAST_HSTS_SECONDS", 0, "a whole number of seconds")
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("TABCAST_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _env_bool("TABCAST_HSTS_PRELOAD", False)

# --- Realtime -------------------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
# Every Redis key and pub/sub channel of this deployment starts with it: deployments (or test
# clusters) sharing one Redis must use different prefixes, since app ids are per database.
REDIS_PREFIX = os.environ.get("TABCAST_REDIS_PREFIX", "tabcast")
if "{" in REDIS_PREFIX or "}" in REDIS_PREFIX:
    raise ImproperlyConfigured("TABCAST_REDIS_PREFIX must not contain { or } (they delimit Redis Cluster hash tags)")
# One Redis (redis://), a Redis Cluster (redis+cluster://host:port,...) or a master watched by
# Sentinels (REDIS_SENTINELS=host:port,... + REDIS_SENTINEL_MASTER=name, or redis+sentinel://...):
# service/realtime/redis_connect.py. Either way REDIS_URL ends up naming it.
try:
    _REDIS_TARGET = redis_connect.configured(REDIS_URL, os.environ.get("REDIS_SENTINELS", "").strip(),
                                             os.environ.get("REDIS_SENTINEL_MASTER", "").strip())
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if _REDIS_TARGET is not None:
    REDIS_URL = _REDIS_TARGET.url
    CHANNEL_LAYERS = {"default": redis_connect.channel_layer_config(_REDIS_TARGET, REDIS_PREFIX)}
    TABCAST_STATE_BACKEND = "service.realtime.state.redis.RedisState"
    # Rate limits (dashboard log-in, sign-up) must count across all processes.
    CACHES = {"default": redis_connect.cache_config(_REDIS_TARGET, REDIS_PREFIX)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "service.realtime.local_layer.LocalChannelLayer"}}
    TABCAST_STATE_BACKEND = "service.realtime.state.memory.MemoryState"

TABCAST = {
    # Seconds the client may stay silent before it should ping (sent in connection_established).
    "ACTIVITY_TIMEOUT": _env_int("TABCAST_ACTIVITY_TIMEOUT", 120, "a whole number of seconds", 1),
    # Seconds without any frame from a client before it is closed with 4201.
    "PONG_GRACE": _env_int("TABCAST_PONG_GRACE", 30, "a whole number of seconds", 1),
    # Seconds a connection has to send a whole HTTP request, or to get its WebSocket accepted,
    # from when it opened (or from the first byte of its next keep-alive request); then it is
    # closed (slowloris). 0 = no deadline. See service/realtime/server.py.
    "HANDSHAKE_TIMEOUT": _env_float("TABCAST_HANDSHAKE_TIMEOUT", 5.0),
    # Per client IP and per process (N workers: N x): open WebSockets, and connects per second
    # (token bucket of this burst). Beyond them a socket gets pusher:error 4100 and is closed
    # (clients back off and retry). 0 = no limit. IPv6 clients count per /64. service/realtime/admission.py
    "MAX_SOCKETS_PER_IP": _env_int("TABCAST_MAX_SOCKETS_PER_IP", 1000),
    "CONNECTS_PER_IP_PER_SECOND": _env_float("TABCAST_CONNECTS_PER_IP_PER_SECOND", 100.0, "a number of connects per second"),
    "CONNECT_BURST_PER_IP": _env_int("TABCAST_CONNECT_BURST_PER_IP", 200),
    # Peers (addresses or networks, comma-separated, "*" = any) whose X-Forwarded-For/-Proto are
    # believed; empty (the default) = ignore those headers, every client is its TCP peer.
    "TRUSTED_PROXIES": os.environ.get("TABCAST_TRUSTED_PROXIES", ""),
    # Bytes a slow reader's socket may hold unsent in this process (beyond what the kernel took)
    # before it is closed with 4100 (the client reconnects with backoff); bounds memory per socket.
    "MAX_PENDING_BYTES": _env_int("TABCAST_MAX_PENDING_BYTES", 1024 * 1024, "a whole number of bytes", 1),
    # Seconds a closing socket has to take its close frame before its connection is aborted.
    "SLOW_CLOSE_DEADLINE": _env_float("TABCAST_SLOW_CLOSE_DEADLINE", 5.0),
    # Deploys (docs/deploy.md): on SIGTERM the process stops taking WebSockets, answers /healthz
    # with 503 "draining", and closes its sockets with 4200 (reconnect at once) in evenly spaced
    # batches over this many seconds, so the other processes get the reconnects as a stream, not
    # a herd; then it finishes HTTP requests in flight, flushes metering and exits.
    "DRAIN_SECONDS": _env_float("TABCAST_DRAIN_SECONDS", 10.0),
    # Listen with SO_REUSEPORT even as one process (`serve --reuse-port` does the same): several
    # independently started `serve`s share the port, so a host can start the new release before
    # stopping the old one. A draining process then closes its listener at once (the kernel sends
    # new connects to the others). Needs REDIS_URL. service/realtime/server.py
    "REUSE_PORT": _env_bool("TABCAST_REUSE_PORT", False),
    # Channels one socket may be subscribed to at once (Ably: 200). The SDK's shared socket carries
    # every tab's channels, so the default leaves room for many tabs.
    "MAX_SUBSCRIPTIONS_PER_SOCKET": _env_int("TABCAST_MAX_SUBSCRIPTIONS_PER_SOCKET", 500, "a whole number", 1),
    "MAX_CHANNEL_NAME": 200,
    "MAX_EVENT_NAME": 200,
    "MAX_CHANNELS_PER_PUBLISH": 100,
    "MAX_BATCH_EVENTS": 10,
    "MAX_PRESENCE_MEMBERS": 100,
    "MAX_PRESENCE_USER_BYTES": 1024,
    "CLIENT_EVENTS_PER_SECOND": 10,
    "CACHE_TTL": 1800,
    # Most messages a resume replays (docs/recovery.md); a socket that missed more is told recovered: false.
    "MAX_REPLAY": _env_int("TABCAST_MAX_REPLAY", 1000, "a whole number", 1),
    "TIMESTAMP_WINDOW": 600,
    # Max raw HTTP request body for the publish APIs (the per-app data limit is checked separately).
    "MAX_REQUEST_BYTES": 1024 * 1024,
    # Public HTTP endpoints: requests per second per app (token bucket, burst = 2x).
    "HTTP_RATE_PER_APP": _env_int("TABCAST_HTTP_RATE_PER_APP", 2000, "a whole number of requests per second", 1),
    # How long (s) a rotated secret keeps working.
    "SECRET_GRACE_SECONDS": _env_int("TABCAST_SECRET_GRACE_SECONDS", 24 * 3600, "a whole number of seconds"),
    "STATE_BACKEND": TABCAST_STATE_BACKEND,
    # How the realtime engine looks up an app by key or id, without importing tenant models.
    "APP_SOURCE": "tenants.services.load_app",
    # How it looks up a tenant's plan limits (messages per day, connects/s and client events/s
    # per app; see billing/METERING.md "Quotas"), cached like apps; empty: no plan quotas.
    "LIMITS_SOURCE": "billing.services.engine_limits",
    # Seconds an app's settings are cached in a process (a save in this process clears it at once).
    "APP_CACHE_SECONDS": _env_float("TABCAST_APP_CACHE_SECONDS", 5.0),
    # At most this many apps, and apart from them this many unknown keys/ids ("no such app"
    # answers), are cached per process: junk keys can neither grow memory nor evict real apps.
    "APP_CACHE_SIZE": _env_int("TABCAST_APP_CACHE_SIZE", 10000, "a whole number", 1),
    "APP_CACHE_MISSES": _env_int("TABCAST_APP_CACHE_MISSES", 1000, "a whole number", 1),
    # GET /apps/{id}/channels lists at most this many channels (sorted by name); a longer list
    # is cut there and the answer says so with "truncated": true (Pusher's API has no paging).
    "MAX_CHANNELS_LISTED": _env_int("TABCAST_MAX_CHANNELS_LISTED", 1000, "a whole number", 1),
    # /metrics (Prometheus text): with a token, callers must send "Authorization: Bearer <token>";
    # without one, only loopback clients may read it.
    "METRICS_TOKEN": os.environ.get("TABCAST_METRICS_TOKEN", ""),
    # App ids (comma-separated, at most 50) that get per-app series (tabcast_app_*) in /metrics;
    # other apps are only in the totals, so a flood of apps adds no series. docs/metrics.md
    "METRICS_APPS": os.environ.get("TABCAST_METRICS_APPS", ""),
    # Time 1 in N publishes from Node.publish to the hub's write (tabcast_publish_latency_seconds).
    "METRICS_LATENCY_SAMPLE": _env_int("TABCAST_METRICS_LATENCY_SAMPLE", 64, "a whole number", 1),
    # Serve the publish endpoints on the event loop (service/api/fast.py); 0 routes them via Django/DRF.
    "FAST_PUBLISH": _env_bool("TABCAST_FAST_PUBLISH", True),
    # Where the built browser SDK (/sdk/v1/*.js) is read from; empty: sdk_js/dist in the checkout.
    # Without a build `serve` says so at start and those URLs answer 503 with how to build it.
    "SDK_DIST_DIR": os.environ.get("TABCAST_SDK_DIST_DIR", ""),
    # Webhooks to loopback/private addresses are refused unless this is set (self-hosting, tests).
    "WEBHOOKS_ALLOW_PRIVATE": _env_bool("TABCAST_WEBHOOKS_ALLOW_PRIVATE", False),
    # Seconds channel_vacated / member_removed webhooks are held back; a return within them (a page
    # reload) sends neither them nor the channel_occupied / member_added after (as Pusher does).
    # 0 sends at once. service/realtime/held_webhooks.py
    "WEBHOOK_LEAVE_DELAY": _env_float("TABCAST_WEBHOOK_LEAVE_DELAY", 3.0),
    # Presence/count entries of a process expire this long after its last heartbeat.
    "NODE_TTL": _env_int("TABCAST_NODE_TTL", 30, "a whole number of seconds", 1),
    # Redis connections of the state backend per process; callers beyond it wait for a free one
    # (a busy pool is not an outage).
    "REDIS_POOL_SIZE": _env_int("TABCAST_REDIS_POOL_SIZE", 64, "a whole number of connections", 1),
}

# --- REST API ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "service.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tabcast HTTP API",
    "DESCRIPTION": "Pusher-compatible publish and query API, plus Tabcast's simple /publish.",
    "VERSION": "1.0.0",
}

# TABCAST_LOG_FORMAT: "plain" (default, for people) or "json" (one object per line: timestamp, level,
# logger, event, app_id/socket_id/request_id where known; service/logs.py). Either way secrets are
# redacted, and a flood of the same django.request / uvicorn.error line is summarized.
LOG_FORMAT = os.environ.get("TABCAST_LOG_FORMAT", "plain").strip().lower() or "plain"
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"TABCAST_LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOG_LEVEL = os.environ.get("TABCAST_LOG_LEVEL", "INFO").strip().upper() or "INFO"
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"TABCAST_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "service.logs.ContextFilter"},
        "redact": {"()": "service.logs.RedactFilter"},
        "floods": {"()": "service.logs.FloodFilter"},
        "no_traceback": {"()": "service.logs.NoTraceback"},
    },
    "formatters": {
        "plain": {"()": "service.logs.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "service.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["context", "redact"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "uvicorn.access": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "django.request": {"filters": ["floods"]},  # a line per 4xx/5xx: summarized in a flood
        "uvicorn.error": {"filters": ["floods"]},  # e.g. "Invalid HTTP request received." per request
        # A scanner's made-up Host headers: answered 400; one line each (no traceback), floods summarized.
        "django.security.DisallowedHost": {"filters": ["floods", "no_traceback"]},
        "django.security.csrf": {"filters": ["floods"]},
    },
}

# --- Billing (Stripe) -------------------------------------------------------------------------

# Without a secret key billing pages say billing is not configured and nothing calls Stripe.
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
# Signing secret (whsec_...) of the webhook endpoint at /dashboard/billing/stripe/webhook.
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
# Another API host (a local fake in tests, a proxy when self-hosting); empty: Stripe's own.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
# Event name of the Billing Meter on peak physical connections.
STRIPE_METER_EVENT_NAME = os.environ.get("STRIPE_METER_EVENT_NAME", "tabcast_peak_connections")
