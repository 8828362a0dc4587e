"""The same SDK against a Tabcast server running on Redis (shared state and fan-out)."""

import pytest

from tests.browser.conftest import listen_and_wait, open_tabs, wait_for_event, wait_for_stats
from tests.support.clients import python_backend
from tests.support.processes import TabcastProcess

pytestmark = [pytest.mark.browser, pytest.mark.redis]


@pytest.fixture(scope="module")
def server(redis_url):
    process = TabcastProcess(redis_url=redis_url).start()
    yield process
    process.stop()


@pytest.mark.parametrize("transport", ["shared-worker", "leader"])
def test_tabs_share_one_connection_on_redis(server, customer, new_context, transport):
    key = customer.app["key"]
    tabs = open_tabs(new_context(), customer.url(key=key, transport=transport, user="erin"), 4)
    (other_browser,) = open_tabs(new_context(), customer.url(key=key, transport=transport, user="finn"), 1)
    channel = f"presence-{transport}"
    listen_and_wait(tabs + [other_browser], channel)
    wait_for_stats(server, key, connections=2, tabs=5)
    assert other_browser.evaluate("name => tabcast.channel(name).members.count", channel) == 2

    python_backend(customer.app).trigger([channel], "news", {"on": "redis"})
    for page in tabs + [other_browser]:
        assert wait_for_event(page, channel, "news") == [{"on": "redis"}]

    tabs[0].evaluate("name => tabcast.channel(name).trigger('client-wave', {from: 'erin'})", channel)
    for page in tabs[1:] + [other_browser]:
        assert wait_for_event(page, channel, "client-wave") == [{"from": "erin"}]
