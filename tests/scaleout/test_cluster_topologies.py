"""The cross-process suites, again on a Redis Cluster and on a Sentinel-watched master.

Two (or three) real Tabcast processes share one database and the topology: what
``test_cross_process.py`` (delivery, client events, presence, channel counts, terminate, a
killed process), the held webhooks across processes, the per-tenant message quota and the
metering of a two-process cluster check on one Redis must hold there too. The tests are the
same functions, collected here with this module's fixtures: ``redis_url`` and ``cluster``
name the topology instead of a plain redis-server.
"""

import pytest

from tests.billing.conftest import pair  # noqa: F401 - the fixture, on this module's redis_url
from tests.billing.test_quota_cluster import test_traffic_through_one_process_uses_up_the_quota_on_every_process  # noqa: F401
from tests.metering.test_metering_e2e import test_two_processes_on_redis_count_each_delivery_once  # noqa: F401
# cluster: processes A and B on this module's redis_url, webhooks held as test_held_webhooks.py wants.
from tests.realtime.test_held_webhooks import cluster  # noqa: F401 - the fixture
from tests.realtime.test_held_webhooks import test_a_return_on_another_process_cancels_the_held_vacated  # noqa: F401
from tests.scaleout.test_cross_process import (  # noqa: F401
    test_a_killed_process_drops_out_of_members_and_counts,
    test_channel_queries_agree_from_either_process,
    test_client_events_cross_processes_but_not_back_to_the_sender,
    test_presence_member_added_once_per_user_and_removed_after_the_last_socket,
    test_publish_on_one_process_reaches_subscribers_on_the_other,
    test_terminate_connections_reaches_a_socket_on_the_other_process,
)
from tests.support.redis_topologies import ClusterTopology, SentinelTopology

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def redis_url(request):
    """A 3-master Redis Cluster, or a master + replica + 3 sentinels (as REDIS_URL)."""
    topology = ClusterTopology(masters=3) if request.param == "cluster" else SentinelTopology()
    topology.start()
    yield topology.url
    topology.stop()


@pytest.fixture
def app(cluster):
    """A fresh app; as returned it points at process A."""
    return cluster.a.create_app("scaleout", client_events=True)


def test_the_dashboard_rate_limits_count_in_the_topology(cluster):
    """Django's cache (the log-in and sign-up rate limits) lives in the same Redis: hits counted
    by one process are seen by another (redis_connect_cache.py on a cluster or Sentinel)."""
    from tenants.ratelimit import LIMITS

    script = "from tenants.ratelimit import hit; print(max(hit('login', '203.0.113.9') for _ in range({n})))"
    limit, _ = LIMITS["login"]
    def run(server, hits: int) -> int:
        return int(server.manage("shell", "-c", script.format(n=hits)).strip().splitlines()[-1])

    assert run(cluster.a, limit) == 0  # all allowed
    assert run(cluster.b, 1) > 0  # over the limit there too: seconds to wait
