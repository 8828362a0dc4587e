"""Pusher close and error codes, in one place.

Ranges (Pusher protocol): 4000-4099 don't reconnect; 4100-4199 reconnect with backoff;
4200-4299 reconnect at once; 4300-4399 other errors. Codes Pusher does not define are
marked "Tabcast" and stay inside the range whose client behaviour they want.
"""

# Connection refused: the client must not retry with the same parameters.
APP_DOES_NOT_EXIST = 4001
APP_DISABLED = 4003
OVER_CONNECTION_QUOTA = 4004
PATH_NOT_FOUND = 4005
UNSUPPORTED_PROTOCOL = 4007
UNAUTHORIZED = 4009  # origin not allowed, bad signin, terminated by the app

# Reconnect after backing off.
OVER_CAPACITY = 4100  # also: a socket too slow to drain its frames (Tabcast)

# Reconnect immediately.
RECONNECT_NOW = 4200  # server shutting down or restarting
PONG_NOT_RECEIVED = 4201

# Soft errors: sent as pusher:error, the connection stays open.
INVALID_MESSAGE = 4300  # Tabcast: malformed frame, unknown event, bad field (Pusher sends code null)
CLIENT_EVENT_REJECTED = 4301  # disabled, not subscribed, rate limited, too large, bad name
WATCHLIST_LIMIT = 4302
SERVER_ERROR = 4303  # Tabcast: a backend (e.g. Redis) failed while handling the frame; retry

# pusher:subscription_error "status" values (what the reference recommends; soketi's tests rely on them).
SUB_AUTH_FAILED = 401
SUB_INVALID_CHANNEL = 4009
SUB_MEMBER_LIMIT = 4100
SUB_SUBSCRIPTION_LIMIT = 4100  # this socket holds as many subscriptions as it may
SUB_MEMBER_TOO_LARGE = 4301
