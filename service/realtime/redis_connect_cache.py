"""Django's Redis cache on a Redis Cluster or a Sentinel-watched master (``redis_connect.py``).

Django's ``RedisCache`` only takes ``redis://`` URLs. Tabcast's cache holds the dashboard's
log-in and sign-up rate limits: single-key commands (SET NX, INCR, EXPIRE, GET, DEL), which a
cluster routes by key. ``get_many``/``set_many``/``delete_many`` would span slots; nothing in
Tabcast uses them.
"""

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

from . import redis_connect


class _ClusterOrSentinelClient(RedisCacheClient):
    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._target = redis_connect.parse_url(servers[0])
        self._shared = None
        self._lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        if self._shared is None:
            with self._lock:
                if self._shared is None:
                    self._shared = self._connect()
        return self._shared

    def _connect(self):
        target = self._target
        if target.kind == redis_connect.CLUSTER:
            from redis.cluster import ClusterNode, RedisCluster

            return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.hosts], ssl=target.ssl,
                                socket_connect_timeout=redis_connect.CONNECT_TIMEOUT, socket_timeout=5,
                                **target.auth())
        from redis.sentinel import Sentinel

        sentinel = Sentinel(list(target.hosts), sentinel_kwargs={"socket_timeout": redis_connect.SENTINEL_TIMEOUT},
                            socket_connect_timeout=redis_connect.CONNECT_TIMEOUT, socket_timeout=5)
        return sentinel.master_for(target.master, db=target.db, ssl=target.ssl, **target.auth())


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ClusterOrSentinelClient
