"""Tabcast settings: the only module that reads the environment.

With no environment at all the service runs embedded: one process, SQLite, and
in-memory channel layer and state. ``REDIS_URL`` switches the channel layer and
the shared state (presence, counts, metering) to Redis; ``DATABASE_URL`` switches
the database (e.g. ``postgres://127.0.0.1:5432/tabcast``).
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TABCAST_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


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

EMAIL_BACKEND = os.environ.get("TABCAST_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("TABCAST_FROM_EMAIL", "Tabcast <no-reply@tabcast.local>")

# --- Realtime -------------------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
# Every Redis key and pub/sub channel of this deployment starts with it: deployments (or test
# clusters) sharing one Redis must use different prefixes, since app ids are per database.
REDIS_PREFIX = os.environ.get("TABCAST_REDIS_PREFIX", "tabcast")

if REDIS_URL:
    # redis-py 8 defaults (5 s socket timeout, pool cap 100) break long-lived pub/sub readers
    # (channels_redis#422): no read timeout, and a pool large enough for bursts of group_add.
    # A short connect timeout lets publishes fail fast (HTTP 503) when Redis is unreachable.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "service.realtime.redis_layer.PipelinedPubSubChannelLayer",  # pipelined PUBLISH
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None, "socket_connect_timeout": 1,
                           "max_connections": 1000}],
                "prefix": REDIS_PREFIX,
            },
        }
    }
    TABCAST_STATE_BACKEND = "service.realtime.state.redis.RedisState"
    # Rate limits (dashboard log-in, sign-up) must count across all processes.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": f"{REDIS_PREFIX}-cache"}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "service.realtime.local_layer.LocalChannelLayer"}}
    TABCAST_STATE_BACKEND = "service.realtime.state.memory.MemoryState"

TABCAST = {
    # Seconds the client may stay silent before it should ping (sent in connection_established).
    "ACTIVITY_TIMEOUT": int(os.environ.get("TABCAST_ACTIVITY_TIMEOUT", "120")),
    # Seconds without any frame from a client before it is closed with 4201.
    "PONG_GRACE": int(os.environ.get("TABCAST_PONG_GRACE", "30")),
    # Frames a slow socket may have queued before it is closed (4100, reconnect with backoff).
    "MAX_PENDING_FRAMES": int(os.environ.get("TABCAST_MAX_PENDING_FRAMES", "1000")),
    "MAX_CHANNEL_NAME": 200,
    "MAX_EVENT_NAME": 200,
    "MAX_CHANNELS_PER_PUBLISH": 100,
    "MAX_BATCH_EVENTS": 10,
    "MAX_PRESENCE_MEMBERS": 100,
    "MAX_PRESENCE_USER_BYTES": 1024,
    "CLIENT_EVENTS_PER_SECOND": 10,
    "CACHE_TTL": 1800,
    "TIMESTAMP_WINDOW": 600,
    # Max raw HTTP request body for the publish APIs (the per-app data limit is checked separately).
    "MAX_REQUEST_BYTES": 1024 * 1024,
    # Public HTTP endpoints: requests per second per app (token bucket, burst = 2x).
    "HTTP_RATE_PER_APP": int(os.environ.get("TABCAST_HTTP_RATE_PER_APP", "2000")),
    # How long (s) a rotated secret keeps working.
    "SECRET_GRACE_SECONDS": int(os.environ.get("TABCAST_SECRET_GRACE_SECONDS", str(24 * 3600))),
    "STATE_BACKEND": TABCAST_STATE_BACKEND,
    # How the realtime engine looks up an app by key or id, without importing tenant models.
    "APP_SOURCE": "tenants.services.load_app",
    # Seconds an app's settings are cached in a process (a save in this process clears it at once).
    "APP_CACHE_SECONDS": float(os.environ.get("TABCAST_APP_CACHE_SECONDS", "5")),
    # /metrics (Prometheus text): with a token, callers must send "Authorization: Bearer <token>";
    # without one, only loopback clients may read it.
    "METRICS_TOKEN": os.environ.get("TABCAST_METRICS_TOKEN", ""),
    # Serve the publish endpoints on the event loop (service/api/fast.py); 0 routes them via Django/DRF.
    "FAST_PUBLISH": _env_bool("TABCAST_FAST_PUBLISH", True),
    # Webhooks to loopback/private addresses are refused unless this is set (self-hosting, tests).
    "WEBHOOKS_ALLOW_PRIVATE": _env_bool("TABCAST_WEBHOOKS_ALLOW_PRIVATE", False),
    # Presence/count entries of a process expire this long after its last heartbeat.
    "NODE_TTL": int(os.environ.get("TABCAST_NODE_TTL", "30")),
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TABCAST_LOG_LEVEL", "INFO")},
    "loggers": {
        "uvicorn.access": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
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
