"""Minimal Django settings for the naive Channels baseline: stock in-memory channel layer."""

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
DATABASES = {}
USE_TZ = True
ASGI_APPLICATION = "bench.naive.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# What service.realtime.server.uvicorn_config reads: the same HTTP/WebSocket protocols as Tabcast,
# no trusted proxies, and no handshake deadline: this design accepts a burst of 2,000 sockets so
# slowly that a 5 s deadline would cut it short, and (b) measures the design, not the deadline.
TABCAST = {"TRUSTED_PROXIES": "", "HANDSHAKE_TIMEOUT": 0}
