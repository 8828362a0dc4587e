"""Prometheus metrics of the server (``prometheus_client``); the table is docs/metrics.md.

One ``/metrics`` per server. ``serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh
directory per run, see :func:`prepare_multiprocess_dir`) before the workers start, so every
worker writes its values to mmap'd files there and whichever worker answers a scrape merges
them all (:func:`render`). Counters and histograms are summed over the workers; per-worker
gauges (``multiprocess_mode="liveall"``) keep a ``pid`` label and vanish with their worker.

Cost rules (the fan-out path is hot):

- nothing per delivery: deliveries and bytes are the hub's ``AppTraffic`` counters, folded in
  here by the node's 1 s metering flush (:func:`fold_traffic`), the same numbers billing gets;
- per publish a counter increment, and 1 in ``TABCAST_METRICS_LATENCY_SAMPLE`` publishes a
  timestamp in the broker message (:func:`stamp`, :func:`observe_latency`);
- per received frame two integer additions (:func:`received`), folded in every second;
- gauges are sampled every second by a task on each worker's loop that also measures the
  event loop's lag (:func:`watch_node`), and again right before a scrape.
"""

import asyncio
import atexit
import glob
import logging
import os
import re
import shutil
import tempfile
import time

from django.conf import settings
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import disable_created_metrics

disable_created_metrics()  # no *_created series: Prometheus does not need them, they double the output

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
LAG_INTERVAL = 0.25  # seconds between event-loop lag probes
SAMPLE_EVERY = 4  # lag probes per cheap gauge sample (1 s)
FULL_SAMPLE_EVERY = 20  # lag probes per sample of the per-socket gauges (5 s)
MAX_LABELLED_APPS = 50

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REDIS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


def _gauge(name: str, doc: str, labels=("node",), mode: str = "liveall") -> Gauge:
    return Gauge(name, doc, labels, multiprocess_mode=mode)


# --- per-worker state (gauges, sampled) ---
CONNECTIONS = _gauge("tabcast_connections", "Open WebSocket connections (physical sockets) in the worker.")
LOGICAL_CLIENTS = _gauge("tabcast_logical_clients", "Tabs carried by the worker's sockets.")
LOCAL_CHANNELS = _gauge("tabcast_local_channels", "Channels with at least one subscriber in the worker.")
GROUPS_JOINED = _gauge("tabcast_groups_joined", "Broker groups the worker has joined (one per local channel).")
SUBSCRIPTIONS = _gauge("tabcast_subscriptions", "(socket, channel) subscriptions open in the worker.")
OUTBOUND_BACKLOG = _gauge("tabcast_outbound_backlog_bytes",
                          "Bytes written to the worker's sockets but not yet taken by the kernel.")
FANOUT_BACKLOG = _gauge("tabcast_fanout_backlog_deliveries",
                        "Deliveries queued by fair fan-out and not yet written.")
REDIS_UP = _gauge("tabcast_redis_up", "1 while the worker reaches Redis, 0 during an outage.")
APP_CONNECTIONS = Gauge("tabcast_app_connections", "Sockets of an app across the cluster (TABCAST_METRICS_APPS).",
                        ["app"], multiprocess_mode="livemax")
QUOTA_RATIO = Gauge("tabcast_connection_quota_usage_ratio_max",
                    "Highest sockets / connection limit over the apps with sockets here.",
                    multiprocess_mode="livemax")

# --- connections ---
CONNECTS = Counter("tabcast_connects", "WebSocket connections established.")
DISCONNECTS = Counter("tabcast_disconnects", "Established connections that ended, by close code.", ["code"])
HANDSHAKE_FAILURES = Counter("tabcast_handshake_failures",
                             "Connections refused or timed out before connection_established.", ["reason"])
SUBSCRIPTIONS_MADE = Counter("tabcast_subscribes", "Subscriptions made.")
SLOW_READER_CLOSES = Counter("tabcast_slow_reader_closes",
                             "Sockets closed with 4100 for having more than TABCAST_MAX_PENDING_BYTES pending.")
LIMIT_REJECTIONS = Counter("tabcast_limit_rejections", "Requests or frames refused by a limit.", ["kind"])

# --- traffic ---
PUBLISHED = Counter("tabcast_messages_published", "Messages accepted for delivery, by source.", ["source"])
MESSAGES = Counter("tabcast_messages", "Messages metered (the Usage page's messages).")
DELIVERIES = Counter("tabcast_deliveries", "Frames written to subscribed sockets by fan-out.")
LOGICAL_DELIVERIES = Counter("tabcast_logical_deliveries", "Deliveries counted per tab.")
BYTES_SENT = Counter("tabcast_bytes_sent", "Payload bytes of fan-out deliveries.")
BYTES_RECEIVED = Counter("tabcast_bytes_received", "Bytes of text frames received from clients.")
FRAMES_RECEIVED = Counter("tabcast_frames_received", "Text frames received from clients.")
APP_MESSAGES = Counter("tabcast_app_messages", "Messages of an app (TABCAST_METRICS_APPS).", ["app"])
APP_DELIVERIES = Counter("tabcast_app_deliveries", "Deliveries of an app (TABCAST_METRICS_APPS).", ["app"])
APP_BYTES_SENT = Counter("tabcast_app_bytes_sent", "Bytes sent of an app (TABCAST_METRICS_APPS).", ["app"])
PUBLISH_LATENCY = Histogram("tabcast_publish_latency_seconds",
                            "Sampled: Node.publish to the receiving hub having written the message.",
                            buckets=_LATENCY_BUCKETS)

# --- HTTP API ---
HTTP_REQUESTS = Counter("tabcast_http_requests", "HTTP requests by route and status.", ["route", "status"])
HTTP_DURATION = Histogram("tabcast_http_request_duration_seconds", "HTTP request duration by route.", ["route"],
                          buckets=_HTTP_BUCKETS)

# --- Redis, broker, webhooks, event loop ---
REDIS_DURATION = Histogram("tabcast_redis_command_duration_seconds", "Redis round trips by operation.", ["op"],
                           buckets=_REDIS_BUCKETS)
REDIS_ERRORS = Counter("tabcast_redis_errors", "Redis operations that failed, by part.", ["part"])
REDIS_RECONNECTS = Counter("tabcast_redis_reconnects", "Redis connections re-established, by part.", ["part"])
BROKER_REJOINS = Counter("tabcast_broker_rejoins", "Times the broker re-joined its groups after losing Redis.")
BROKER_GROUPS_REJOINED = Counter("tabcast_broker_groups_rejoined", "Groups re-joined in those recoveries.")
WEBHOOKS = Counter("tabcast_webhooks", "Webhook deliveries by outcome.", ["outcome"])
RESUMES = Counter("tabcast_resumes", "Subscriptions resumed (docs/recovery.md), by whether nothing was lost.",
                  ["recovered"])
GAPS_REPAIRED = Counter("tabcast_stream_gaps_repaired", "Gaps in a channel's live stream filled from its history.")
EVENT_LOOP_LAG = Histogram("tabcast_event_loop_lag_seconds",
                           f"How late a {LAG_INTERVAL} s periodic callback fires on the event loop.",
                           buckets=_LAG_BUCKETS)

# Every label value known in advance starts at 0, so alerts on increase()/rate() see the
# first event (a series that appears with its first sample would hide it) and dashboards show 0.
HANDSHAKE_REASONS = ("ip_sockets", "ip_connect_rate", "protocol", "unknown_app", "app_disabled", "origin",
                     "draining", "connection_quota", "app_connect_rate", "timeout")
LIMIT_KINDS = ("messages_per_day", "deliveries_per_second", "api_rate", "client_events_per_socket",
               "client_events_per_second", "subscriptions_per_socket", "presence_members", "connection_quota",
               "app_connect_rate", "ip_sockets", "ip_connect_rate")
SOURCES = ("http", "client_event", "console", "webhook", "internal")
WEBHOOK_OUTCOMES = ("delivered", "error", "gave_up", "dropped", "blocked")
for _reason in HANDSHAKE_REASONS:
    HANDSHAKE_FAILURES.labels(_reason)
for _kind in LIMIT_KINDS:
    LIMIT_REJECTIONS.labels(_kind)
_published = {_source: PUBLISHED.labels(_source) for _source in SOURCES}  # per publish: no labels() lookup
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOKS.labels(_outcome)
for _part in ("delivery", "state", "pubsub"):
    REDIS_ERRORS.labels(_part)
    REDIS_RECONNECTS.labels(_part)
for _code in ("1000", "1001", "1005", "1006", "4100", "4200", "4201"):
    DISCONNECTS.labels(_code)

# Close codes kept as label values; any other code a client sends is "other".
_KNOWN_CODES = frozenset([*range(1000, 1016), 4001, 4003, 4004, 4005, 4007, 4009, 4100, 4200, 4201, 4300, 4301,
                          4302, 4303])


# --- events (cheap; called from the realtime code) ---

def disconnected(code) -> None:
    DISCONNECTS.labels(str(code) if code in _KNOWN_CODES else "other").inc()


def handshake_failed(reason: str) -> None:
    HANDSHAKE_FAILURES.labels(reason).inc()


def limit_rejected(kind: str) -> None:
    LIMIT_REJECTIONS.labels(kind).inc()


def published(source: str, n: int = 1) -> None:
    child = _published.get(source)
    if child is None:
        child = _published[source] = PUBLISHED.labels(source)
    child.inc(n)


_received = [0, 0]  # frames, bytes since the last fold


def received(size: int) -> None:
    pending = _received
    pending[0] += 1
    pending[1] += size


def _fold_received() -> None:
    frames, size = _received
    if frames:
        _received[0] = _received[1] = 0
        FRAMES_RECEIVED.inc(frames)
        BYTES_RECEIVED.inc(size)


_sample_every = 0
_publishes = 0


def stamp() -> float | None:
    """A wall-clock timestamp for 1 in N publishes (put in the broker message), else None."""
    global _publishes, _sample_every
    if not _sample_every:
        _sample_every = max(1, int(settings.TABCAST.get("METRICS_LATENCY_SAMPLE", 64)))
    _publishes += 1
    if _publishes >= _sample_every:
        _publishes = 0
        return time.time()
    return None


def observe_latency(sent_at: float) -> None:
    PUBLISH_LATENCY.observe(max(0.0, time.time() - sent_at))


def webhook(outcome: str) -> None:
    WEBHOOKS.labels(outcome).inc()


def resumed(recovered: bool, n: int = 1) -> None:
    """Sockets told ``tabcast:resumed`` (a resume, or a gap this process could not fill)."""
    RESUMES.labels("true" if recovered else "false").inc(n)


def gap_repaired() -> None:
    GAPS_REPAIRED.inc()


class timed_redis:
    """``with timed_redis("state"): ...`` observes the round trip (success or not)."""

    __slots__ = ("op", "start")

    def __init__(self, op: str):
        self.op = op

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        REDIS_DURATION.labels(self.op).observe(time.perf_counter() - self.start)
        return False


# --- per-app labels: opt-in, bounded ---

_labelled_apps: frozenset[int] | None = None


def labelled_apps() -> frozenset[int]:
    """The app ids of ``TABCAST_METRICS_APPS`` (at most MAX_LABELLED_APPS)."""
    global _labelled_apps
    if _labelled_apps is None:
        ids = []
        for item in str(settings.TABCAST.get("METRICS_APPS", "")).split(","):
            item = item.strip()
            if item.isdigit():
                ids.append(int(item))
        if len(ids) > MAX_LABELLED_APPS:
            log.warning("TABCAST_METRICS_APPS lists %d apps; only the first %d get per-app series",
                        len(ids), MAX_LABELLED_APPS)
        _labelled_apps = frozenset(ids[:MAX_LABELLED_APPS])
    return _labelled_apps


def fold_traffic(taken: dict) -> None:
    """Add one metering flush's ``AppTraffic`` (app id -> counters) to the counters: the very
    numbers the node hands to billing, so /metrics and the Usage page count the same things."""
    if not taken:
        return
    apps = labelled_apps()
    messages = deliveries = logical = size = 0
    for app_id, traffic in taken.items():
        messages += traffic.messages
        deliveries += traffic.deliveries
        logical += traffic.logical_deliveries
        size += traffic.bytes
        if app_id in apps:
            label = str(app_id)
            APP_MESSAGES.labels(label).inc(traffic.messages)
            APP_DELIVERIES.labels(label).inc(traffic.deliveries)
            APP_BYTES_SENT.labels(label).inc(traffic.bytes)
    MESSAGES.inc(messages)
    DELIVERIES.inc(deliveries)
    LOGICAL_DELIVERIES.inc(logical)
    BYTES_SENT.inc(size)


_connection_limits: dict[int, int] = {}  # app id -> its max_connections, for apps with sockets here
_ratios: dict[int, float] = {}


_app_counts_set: set[int] = set()  # labelled apps whose tabcast_app_connections this worker set
_app_counts_now: set[int] = set()


def note_app_connections(app_id: int, sockets: int) -> None:
    """From the flush, for each app with sockets here: its sockets across the cluster (read for the peaks)."""
    if app_id in labelled_apps():
        APP_CONNECTIONS.labels(str(app_id)).set(sockets)
        _app_counts_set.add(app_id)
        _app_counts_now.add(app_id)
    limit = _connection_limits.get(app_id)
    if limit:
        _ratios[app_id] = sockets / limit


def after_flush() -> None:
    QUOTA_RATIO.set(max(_ratios.values(), default=0.0))
    _ratios.clear()
    for app_id in _app_counts_set - _app_counts_now:  # no sockets here any more: 0 (the max is the others')
        APP_CONNECTIONS.labels(str(app_id)).set(0)
    _app_counts_set.intersection_update(_app_counts_now)
    _app_counts_now.clear()


# --- node listener, sampler and lag probe ---

def on_node_started(sender=None, node=None, **kwargs) -> None:
    """``lifespan.node_started`` receiver: count connects/subscriptions, sample gauges, probe lag."""
    node.listeners.append(_Listener(node))
    task = node.loop.create_task(watch_node(node))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    if MULTIPROC_ENV in os.environ:
        atexit.register(_process_gone)


_tasks: set[asyncio.Task] = set()


class _Listener:
    def __init__(self, node):
        self.node = node

    def __call__(self, app_id: int, kind: str, details: dict) -> None:
        if kind == "connected":
            CONNECTS.inc()
            socket = self.node.hub.connections.get(details.get("socket_id"))
            limit = getattr(getattr(socket, "app", None), "max_connections", None)
            if limit:
                _connection_limits[app_id] = limit
        elif kind == "subscribed":
            SUBSCRIPTIONS_MADE.inc()
        elif kind == "disconnected" and not self.node.hub.app_sockets(app_id):
            _connection_limits.pop(app_id, None)


async def watch_node(node) -> None:
    """Every LAG_INTERVAL: how late the loop woke us (lag); every second: sample the gauges."""
    loop = asyncio.get_running_loop()
    ticks = 0
    while True:
        started = loop.time()
        await asyncio.sleep(LAG_INTERVAL)
        EVENT_LOOP_LAG.observe(max(0.0, loop.time() - started - LAG_INTERVAL))
        ticks += 1
        if ticks % SAMPLE_EVERY == 0:
            try:
                sample(node, full=ticks % FULL_SAMPLE_EVERY == 0)
            except Exception:  # noqa: BLE001 - metrics never stop the server
                log.exception("sampling metrics failed")


def sample(node, full: bool = True) -> None:
    """Set this worker's gauges from its hub (runs on the node's loop)."""
    from .outage import redis_outage

    hub = node.hub
    label = node.state.node_id
    CONNECTIONS.labels(label).set(len(hub.connections))
    LOGICAL_CLIENTS.labels(label).set(sum(hub.app_tabs(app_id) for app_id in hub.apps()))
    LOCAL_CHANNELS.labels(label).set(len(hub.local_channels()))
    GROUPS_JOINED.labels(label).set(len(node.broker.groups))
    FANOUT_BACKLOG.labels(label).set(hub.backlog)
    if settings.REDIS_URL:
        REDIS_UP.labels(label).set(0 if redis_outage.ongoing else 1)
    if full:
        conns = list(hub.connections.values())
        SUBSCRIPTIONS.labels(label).set(sum(len(conn.channels) for conn in conns))
        OUTBOUND_BACKLOG.labels(label).set(sum(pending_bytes(conn) for conn in conns))
    _fold_received()


def pending_bytes(conn) -> int:
    """Bytes waiting to be written to one socket (transport buffer, or the ASGI path's queue)."""
    try:
        protocol = conn._direct  # noqa: SLF001 - read only
        if protocol is None:
            return conn._queued_bytes  # noqa: SLF001 - the ASGI path's queue
        transport = protocol.transport
        if hasattr(transport, "get_write_buffer_size"):  # asyncio (uvicorn)
            return transport.get_write_buffer_size()
        from .connection import _twisted_buffered

        return _twisted_buffered(transport)  # Twisted (daphne)
    except Exception:  # noqa: BLE001 - a socket going away meanwhile
        return 0


# --- HTTP: an ASGI middleware around the HTTP app ---

_ROUTES = (
    ("events", re.compile(r"/apps/[^/]+/events")),
    ("batch_events", re.compile(r"/apps/[^/]+/batch_events")),
    ("channels", re.compile(r"/apps/[^/]+/channels")),
    ("channel_users", re.compile(r"/apps/[^/]+/channels/[^/]+/users")),
    ("channel_history", re.compile(r"/apps/[^/]+/channels/[^/]+/history")),
    ("channel", re.compile(r"/apps/[^/]+/channels/[^/]+")),
    ("terminate", re.compile(r"(/apps/[^/]+)?/users/[^/]+/terminate_connections")),
)
_EXACT = {"/publish": "publish", "/healthz": "healthz", "/metrics": "metrics"}


def route_of(path: str) -> str:
    """A closed set of route names (never the path itself: ids and channel names are unbounded)."""
    name = _EXACT.get(path)
    if name is not None:
        return name
    if path.startswith("/apps/") or path.startswith("/users/"):
        for name, pattern in _ROUTES:
            if pattern.fullmatch(path):
                return name
        return "other"
    return "dashboard"


_STATUSES = frozenset([200, 201, 204, 301, 302, 303, 304, 400, 401, 403, 404, 405, 409, 410, 413, 415, 429,
                       500, 502, 503, 504])


_http_children: dict[tuple[str, int], tuple] = {}  # bounded: routes x statuses (any status: int keys, few)


class HttpMetrics:
    """Counts every HTTP request Django answers by route and status (the fast publish path, which
    answers before Django, counts its own with :func:`http_request_done`)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            http_request_done(route_of(scope.get("path", "")), status[0], started)


def http_request_done(route: str, code: int, started: float) -> None:
    """Count one answered request (``started``: its ``time.perf_counter()``). The fast publish path
    calls it itself: a middleware layer around it cost ~6 µs per publish, this ~1 µs."""
    key = (route, code)
    children = _http_children.get(key)
    if children is None:  # labels() costs as much as the increment: looked up once per pair
        children = _http_children[key] = (HTTP_REQUESTS.labels(route, str(code) if code in _STATUSES
                                                              else "other"), HTTP_DURATION.labels(route))
    children[0].inc()
    children[1].observe(time.perf_counter() - started)


# --- rendering and the multiprocess directory ---

def render() -> bytes:
    """The text exposition: all workers' values in multiprocess mode, else this process's."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        _forget_dead_workers(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)


def _forget_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that exited (crashed, or restarted by the supervisor)."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = name.rsplit("_", 1)[-1].removesuffix(".db")
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_gone() -> None:
    path = os.environ.get(MULTIPROC_ENV)
    if path and os.path.isdir(path):
        multiprocess.mark_process_dead(os.getpid(), path)


def prepare_multiprocess_dir(workers: int) -> str | None:
    """Called by ``serve`` before the workers start: with ``PROMETHEUS_MULTIPROC_DIR`` set, empty it;
    else, for ``--workers`` > 1, make a fresh one (removed at exit). Returns the directory in use."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        own = f"_{os.getpid()}.db"
        for name in glob.glob(os.path.join(path, "*.db")):
            if not name.endswith(own):  # (this process's own files are open already)
                os.remove(name)  # the previous run's values: counters start from zero with the server
        return path
    if workers <= 1:
        return None
    path = tempfile.mkdtemp(prefix="tabcast-metrics-")
    os.environ[MULTIPROC_ENV] = path  # inherited by the spawned workers, which import prometheus_client anew
    atexit.register(shutil.rmtree, path, True)
    return path
