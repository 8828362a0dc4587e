"""Resume across a cluster: the process holding the browser's socket is killed (SIGKILL), the
load balancer sends the reconnection to the other process, and the history in Redis fills the gap."""

import threading

import pytest

from tests.browser.conftest import (listen_and_wait, open_tabs, publish_numbered, resumes, wait_for_number,
                                    wait_for_stats)
from tests.scaleout.conftest import Cluster, on

pytestmark = [pytest.mark.browser, pytest.mark.redis]

CHANNEL = "orders"


@pytest.fixture
def cluster(redis_url):
    """Two processes, A and B, on one Redis and one database (A is killed by the test)."""
    cluster = Cluster(redis_url)
    cluster.a, cluster.b = cluster.start(), cluster.start()
    yield cluster
    cluster.stop()


@pytest.mark.parametrize("transport", ["shared-worker", "leader"])
def test_tabs_miss_nothing_when_the_process_holding_their_socket_is_killed(
        cluster, network_link, customer_sites, new_context, transport):
    app = cluster.a.create_app(f"resume-cluster-{transport}", client_events=True, demo=True, history_size=500)
    via_b = on(app, cluster.b)  # publishes go to B, the survivor, throughout
    balancer = network_link(cluster.a.port, cluster.b.port)  # A while it lives, then B
    site = customer_sites(balancer.http, app)
    pages = open_tabs(new_context(), site.url(key=app["key"], transport=transport), 5)
    listen_and_wait(pages, CHANNEL)
    wait_for_stats(cluster.a, app["key"], connections=1, tabs=5)
    old_socket = pages[0].evaluate("tabcast.connection.socket_id")

    # Published on B, delivered by A through Redis, until A dies in the middle.
    publisher = threading.Thread(target=publish_numbered, args=(via_b, CHANNEL, 1, 200))
    publisher.start()
    pages[0].wait_for_function("c => eventsOf(c, 'n').length >= 30", arg=CHANNEL)
    cluster.a.kill()
    publisher.join()
    for page in pages:
        page.wait_for_function("old => tabcast.connection.state === 'connected' && "
                               "tabcast.connection.socket_id !== old", arg=old_socket, timeout=30_000)
        page.wait_for_function("c => eventsOf(c, 'tabcast:resumed').length", arg=CHANNEL, timeout=30_000)
    publish_numbered(via_b, CHANNEL, 201, 205)

    for page in pages:
        assert wait_for_number(page, CHANNEL, 205) == list(range(1, 206))
        assert [r["recovered"] for r in resumes(page, CHANNEL)] == [True]
    wait_for_stats(cluster.b, app["key"], connections=1, tabs=5)
