"""Where Redis is: one server, a Redis Cluster, or a master watched by Sentinels.

``settings.py`` turns the environment into one URL (``settings.REDIS_URL``); everything that
talks to Redis reads it back with :func:`parse_url`:

* ``redis://[user:password@]host:port/db`` (or ``rediss://``, ``unix://``): one Redis, as always;
* ``redis+cluster://[user:password@]host:port[,host:port...]``: a Redis Cluster. Any reachable
  node(s) will do; the client learns the others (and every later change) from the cluster;
* ``redis+sentinel://[user:password@]host:port[,host:port...]/master[/db]``: the master named
  ``master`` as the listed Sentinels report it. ``REDIS_SENTINELS=host:port,...`` plus
  ``REDIS_SENTINEL_MASTER=master`` is the same thing in two variables. The password (if any) is
  the master's; the Sentinels themselves are reached without one.

What uses which (see ``settings.py``):

=========  =======================================  ================================  =====================
kind       channel layer (fan-out)                   shared state (``state/redis.py``)  Django cache
=========  =======================================  ================================  =====================
single     ``redis_layer`` (pipelined PUBLISH)      ``_WaitingPool``                   Django's RedisCache
sentinel   ``redis_layer`` on a Sentinel pool        ``_WaitingPool`` on Sentinel       ``redis_connect_cache``
cluster    ``cluster_layer`` (sharded pub/sub)       ``RedisCluster`` (gated)           ``redis_connect_cache``
=========  =======================================  ================================  =====================

No Django import here: ``settings.py`` imports this module while settings are being built.
"""

import asyncio
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

SINGLE, CLUSTER, SENTINEL = "single", "cluster", "sentinel"
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")

# Seconds: how fast a dead node is given up on, so publishes and reads fail (HTTP 503) instead of
# hanging through a failover. redis-py's cluster default retries 10 times with up to 1 s backoff.
CONNECT_TIMEOUT = 1.0
CLUSTER_RETRIES = 3
CLUSTER_BACKOFF = (0.02, 0.25)  # (base, cap) of the exponential backoff between cluster retries
SENTINEL_TIMEOUT = 1.0  # a Sentinel that does not answer within this is skipped


@dataclass(frozen=True)
class RedisTarget:
    kind: str  # SINGLE, CLUSTER or SENTINEL
    url: str  # as configured (the single kind hands it to redis-py as is)
    hosts: tuple[tuple[str, int], ...] = ()  # cluster: startup nodes; sentinel: the Sentinels
    master: str = ""  # sentinel: the monitored master's name
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    ssl: bool = False

    def auth(self) -> dict:
        """username/password keyword arguments for redis-py connections (only those that are set)."""
        return {k: v for k, v in (("username", self.username), ("password", self.password)) if v}


def _hosts(netloc_hosts: str, what: str) -> tuple[tuple[str, int], ...]:
    hosts = []
    for part in netloc_hosts.split(","):
        part = part.strip()
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{what}: expected host:port, got {part!r}")
        hosts.append((host.strip("[]"), int(port)))
    if not hosts:
        raise ValueError(f"{what}: no host:port given")
    return tuple(hosts)


def parse_url(url: str) -> RedisTarget:
    """A REDIS_URL (any of the three forms above) as a RedisTarget; ValueError if malformed."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme not in CLUSTER_SCHEMES + SENTINEL_SCHEMES:
        return RedisTarget(SINGLE, url)
    # urlsplit cannot parse several hosts in one netloc: split the userinfo off by hand.
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = (unquote(user) or None), (unquote(secret) if colon else None)
    ssl = scheme.startswith("rediss")
    if scheme in CLUSTER_SCHEMES:
        if path.strip("/") not in ("", "0"):
            raise ValueError("REDIS_URL: a Redis Cluster has only database 0")
        return RedisTarget(CLUSTER, url, _hosts(hostlist, "REDIS_URL (redis+cluster://)"),
                           username=username, password=password, ssl=ssl)
    master, _, db = path.strip("/").partition("/")
    if not master:
        raise ValueError("REDIS_URL: redis+sentinel://host:port[,host:port...]/<master name>[/db]")
    if db and not db.isdigit():
        raise ValueError(f"REDIS_URL: the database after the master name must be a number, got {db!r}")
    return RedisTarget(SENTINEL, url, _hosts(hostlist, "REDIS_URL (redis+sentinel://)"), master=unquote(master),
                       username=username, password=password, db=int(db or 0), ssl=ssl)


def configured(url: str, sentinels: str, master: str) -> RedisTarget | None:
    """The target the environment names (REDIS_URL, or REDIS_SENTINELS + REDIS_SENTINEL_MASTER)."""
    if sentinels or master:
        if url:
            raise ValueError("set either REDIS_URL or REDIS_SENTINELS/REDIS_SENTINEL_MASTER, not both "
                             "(a passworded Sentinel setup: REDIS_URL=redis+sentinel://:password@host:port,.../master)")
        if not (sentinels and master):
            raise ValueError("REDIS_SENTINELS (host:port,...) and REDIS_SENTINEL_MASTER (the master's name) go together")
        _hosts(sentinels, "REDIS_SENTINELS")
        return parse_url(f"redis+sentinel://{sentinels}/{master}")
    if not url:
        return None
    target = parse_url(url)
    if target.kind == SINGLE:
        urlsplit(url)  # (redis-py reports the details of a bad single URL when it connects)
    return target


def describe(target: RedisTarget) -> str:
    """For logs: where Redis is, without the password."""
    if target.kind == SINGLE:
        parts = urlsplit(target.url)
        return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}{parts.path}"
    hosts = ",".join(f"{h}:{p}" for h, p in target.hosts)
    return f"redis {target.kind} {hosts}" + (f" master {target.master}" if target.master else "")


# --- clients ---


def cluster_retry():
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    base, cap = CLUSTER_BACKOFF
    return Retry(ExponentialBackoff(cap=cap, base=base), CLUSTER_RETRIES)


def cluster_client(target: RedisTarget, gate: int | None = None, **options):
    """An async RedisCluster for ``target`` (MOVED/ASK and topology changes are redis-py's job).

    ``gate``: at most this many commands (or pipelines) in flight at once; callers beyond wait.
    redis-py's cluster raises MaxConnectionsError at once when a node's pool is exhausted,
    which a caller could not tell from Redis being down; waiting is what the single-Redis pool does.
    """
    from redis.asyncio.cluster import ClusterNode

    options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
    options.setdefault("retry", cluster_retry())
    cls = _gated_cluster_class() if gate else _cluster_class()
    client = cls(startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
                 require_full_coverage=False, ssl=target.ssl, **target.auth(), **options)
    if gate:
        client._gate = asyncio.Semaphore(gate)  # noqa: SLF001
    return client


def _cluster_class():
    from redis.asyncio.cluster import RedisCluster

    return RedisCluster


_GATED = None


def _gated_cluster_class():
    global _GATED
    if _GATED is None:
        from redis.asyncio.cluster import ClusterPipeline, RedisCluster

        class GatedClusterPipeline(ClusterPipeline):
            async def execute(self, *args, **kwargs):
                async with self.cluster_client._gate:  # noqa: SLF001
                    return await super().execute(*args, **kwargs)

        class GatedRedisCluster(RedisCluster):
            async def execute_command(self, *args, **kwargs):
                async with self._gate:
                    return await super().execute_command(*args, **kwargs)

            def pipeline(self, transaction=None, shard_hint=None):
                if shard_hint:
                    return super().pipeline(transaction, shard_hint)
                return GatedClusterPipeline(self, transaction)

        _GATED = GatedRedisCluster
    return _GATED


def sentinel_manager(target: RedisTarget, **connection_options):
    """An async Sentinel for ``target`` (asks the listed Sentinels where the master is)."""
    from redis.asyncio.sentinel import Sentinel

    return Sentinel(list(target.hosts), sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT,
                                                         "socket_connect_timeout": SENTINEL_TIMEOUT},
                    **connection_options)


def node_client(host: str, port: int, target: RedisTarget, **options):
    """A plain async Redis client for one cluster node (the cluster layer's per-shard links)."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
    # No retry inside redis-py: a failed node is the cluster layer's business (it re-routes).
    return Redis(host=host, port=port, ssl=target.ssl, retry=Retry(NoBackoff(), 0), **target.auth(), **options)


# --- settings ---


def channel_layer_config(target: RedisTarget, prefix: str) -> dict:
    """CHANNEL_LAYERS["default"] for the target."""
    # redis-py 8 defaults (5 s socket timeout, pool cap 100) break long-lived pub/sub readers
    # (channels_redis#422): no read timeout, and a pool large enough for bursts of group_add.
    # A short connect timeout lets publishes fail fast (HTTP 503) when Redis is unreachable.
    connection = {"socket_timeout": None, "socket_connect_timeout": CONNECT_TIMEOUT, "max_connections": 1000}
    if target.kind == CLUSTER:
        return {"BACKEND": "service.realtime.cluster_layer.ClusterChannelLayer",  # sharded pub/sub
                "CONFIG": {"url": target.url, "prefix": prefix}}
    if target.kind == SENTINEL:
        host = {"master_name": target.master, "sentinels": list(target.hosts),
                "sentinel_kwargs": {"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT},
                "db": target.db, **target.auth(), **connection}
    else:
        host = {"address": target.url, **connection}
    return {"BACKEND": "service.realtime.redis_layer.PipelinedPubSubChannelLayer",  # pipelined PUBLISH
            "CONFIG": {"hosts": [host], "prefix": prefix}}


def cache_config(target: RedisTarget, prefix: str) -> dict:
    """CACHES["default"] (rate limits of the dashboard's log-in and sign-up) for the target."""
    if target.kind == SINGLE:
        backend = "django.core.cache.backends.redis.RedisCache"
    else:
        backend = "service.realtime.redis_connect_cache.RedisCache"
    # (A list: Django splits a LOCATION string at commas, and these URLs list several hosts.)
    return {"BACKEND": backend, "LOCATION": [target.url], "KEY_PREFIX": f"{prefix}-cache"}
