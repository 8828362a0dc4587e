"""SharedWorker mode: every tab of a browser profile shares one WebSocket."""

from tests.browser.conftest import listen_and_wait, open_tabs, stats, wait_connected, wait_for_event, wait_for_stats
from tests.support.clients import python_backend


def test_ten_tabs_share_one_connection_and_all_get_events(server, customer, new_context):
    key = customer.app["key"]
    pages = open_tabs(new_context(), customer.url(key=key), 10)
    for page in pages:
        wait_connected(page)
    assert {page.evaluate("tabcast.transport") for page in pages} == {"shared-worker"}
    listen_and_wait(pages, "orders")
    wait_for_stats(server, key, connections=1, tabs=10)

    python_backend(customer.app).trigger(["orders"], "created", {"id": 7})

    for page in pages:
        assert wait_for_event(page, "orders", "created") == [{"id": 7}]
    # One socket id for all: they really are the same connection.
    assert len({page.evaluate("tabcast.connection.socket_id") for page in pages}) == 1
