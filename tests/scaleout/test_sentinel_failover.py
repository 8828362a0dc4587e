"""The Sentinel-watched master dies (SIGKILL) during traffic; the Sentinels promote its replica.

Same scenario as test_cluster_failover.py, with the processes configured by
``REDIS_SENTINELS`` + ``REDIS_SENTINEL_MASTER``: publishes answer 503 for a few seconds at most,
then flow again with no process restarted; every publish answered 200 reaches the subscriber
or the subscriber is told.
"""

import asyncio

import pytest

from tests.support.redis_topologies import SentinelTopology

from .test_cluster_failover import check, failover_during_traffic

pytestmark = pytest.mark.redis


def test_a_killed_sentinel_master_is_replaced_and_publishes_flow_again():
    topology = SentinelTopology().start()
    try:
        report = asyncio.run(failover_during_traffic(
            topology.url, ["orders", "news"], lambda app_id: topology.kill_master(),
            lambda dead: topology.wait_failover()))
        print(f"sentinel failover: {report['refused']} publishes refused over {report['refused_seconds']:.1f} s, "
              f"{report['accepted']} accepted ({sum(map(len, report['missing'].values()))} of them not received, "
              f"{len(report['told'])} tabcast:resumed), new master {report['new_master']}")
        check(report)
    finally:
        topology.stop()


def test_the_sentinel_variables_configure_the_same_topology():
    """REDIS_SENTINELS + REDIS_SENTINEL_MASTER mean redis+sentinel://...; bad combinations fail at start."""
    from service.realtime import redis_connect

    target = redis_connect.configured("", "10.0.0.1:26379, 10.0.0.2:26379", "tabcast")
    assert (target.kind, target.hosts, target.master) == (
        redis_connect.SENTINEL, (("10.0.0.1", 26379), ("10.0.0.2", 26379)), "tabcast")
    assert redis_connect.parse_url(target.url) == target
    for url, sentinels, master in (("redis://x:6379", "h:1", "m"), ("", "h:1", ""), ("", "", "m"), ("", "h", "m")):
        with pytest.raises(ValueError):
            redis_connect.configured(url, sentinels, master)
    secret = redis_connect.parse_url("redis+sentinel://:s3cret@h1:26379,h2:26380/main/2")
    assert (secret.password, secret.db, secret.master, secret.hosts) == ("s3cret", 2, "main", (("h1", 26379), ("h2", 26380)))
    cluster = redis_connect.parse_url("redis+cluster://u:p@h1:7000,h2:7001")
    assert (cluster.kind, cluster.username, cluster.password, cluster.hosts) == (
        redis_connect.CLUSTER, "u", "p", (("h1", 7000), ("h2", 7001)))
    assert "s3cret" not in redis_connect.describe(secret)
