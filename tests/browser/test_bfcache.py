"""The back/forward cache: a tab that navigates away is suspended (not evicted, and in
leader mode it hands over leadership), and resyncs when the user comes back.

Playwright disables bfcache by default (--disable-back-forward-cache), so these tests run
in a browser launched without that switch.
"""

import pytest

from tests.browser.conftest import listen_and_wait, open_tabs, wait_for_event, wait_for_stats
from tests.support.clients import python_backend

pytestmark = pytest.mark.browser


def go_away_and_back(page, customer, while_away):
    url = page.url
    page.goto(f"{customer.origin}/away.html")
    while_away()
    page.go_back(wait_until="commit")  # a page restored from bfcache fires no new "load"
    assert page.url == url
    # A reloaded page would have a fresh window without the flag and fail here.
    page.wait_for_function("() => window.restoredFromCache === true", timeout=5_000)


@pytest.mark.parametrize("transport", ["shared-worker", "leader"])
def test_a_tab_in_bfcache_is_suspended_and_resyncs_on_return(server, customer, bfcache_context, transport):
    key = customer.app["key"]
    away, staying = open_tabs(bfcache_context, customer.url(key=key, transport=transport), 2)
    channel = f"bf-{transport}"
    listen_and_wait([away, staying], channel)
    wait_for_stats(server, key, connections=1, tabs=2)
    if transport == "leader":  # the first tab won the election: the socket leaves with it
        assert away.evaluate("tabcast.link.election.isLeader")
    backend = python_backend(customer.app)

    def while_away():
        # The staying tab keeps (or, if the leader left, regains) a socket and its events.
        wait_for_stats(server, key, connections=1, tabs=1)
        staying.wait_for_function("name => tabcast.channel(name).subscribed && "
                                  "tabcast.connection.state === 'connected'", arg=channel)
        backend.trigger([channel], "update", {"n": 1})
        assert wait_for_event(staying, channel, "update") == [{"n": 1}]

    go_away_and_back(away, customer, while_away)

    away.wait_for_function("name => tabcast.channel(name).subscribed", arg=channel)
    wait_for_stats(server, key, connections=1, tabs=2)
    backend.trigger([channel], "update", {"n": 2})
    assert wait_for_event(staying, channel, "update", count=2) == [{"n": 1}, {"n": 2}]
    # The suspended tab missed n=1 (it was in the cache) and gets what came after its return.
    assert wait_for_event(away, channel, "update") == [{"n": 2}]
