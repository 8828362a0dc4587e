"""Watchlist events in the browser SDK: `tabcast.user.watchlist.bind('online' | 'offline')`, over
the one shared socket, for every signed-in tab (a tab signing in later gets the current status)."""

import pytest

from tests.browser.conftest import wait_connected

pytestmark = pytest.mark.browser

WATCH = """() => {
  window.watched = [];
  window.connectionErrors = [];
  tabcast.connection.bind('error', (e) => connectionErrors.push(e));
  for (const name of ['online', 'offline']) tabcast.user.watchlist.bind(name, (e) => watched.push(e));
  tabcast.signin();
}"""


def wait_watched(page, name: str, ids: list, timeout: float = 15_000):
    page.wait_for_function("([n, ids]) => watched.some((e) => e.name === n && JSON.stringify(e.user_ids) === ids)",
                           arg=[name, str(ids).replace("'", '"').replace(" ", "")], timeout=timeout)


def test_watched_users_come_online_and_go_offline_in_every_signed_in_tab(customer, new_context):
    key = customer.app["key"]
    watcher = new_context()
    first = watcher.new_page()
    first.goto(customer.url(key=key, user="w", watch="bob,carol"))
    wait_connected(first)
    first.evaluate(WATCH)
    wait_watched(first, "offline", ["bob", "carol"])  # the status at signin

    bob = new_context().new_page()
    bob.goto(customer.url(key=key, user="bob"))
    wait_connected(bob)
    bob.evaluate("tabcast.signin()")
    wait_watched(first, "online", ["bob"])

    second = watcher.new_page()  # same browser profile: the same shared socket, already signed in
    second.goto(customer.url(key=key, user="w", watch="bob,carol"))
    wait_connected(second)
    second.evaluate(WATCH)
    wait_watched(second, "online", ["bob"])
    wait_watched(second, "offline", ["carol"])
    assert first.evaluate("tabcast.transport") == second.evaluate("tabcast.transport") == "shared-worker"

    bob.close()  # bob's last tab: his socket closes
    for page in (first, second):
        wait_watched(page, "offline", ["bob"])
        assert page.evaluate("connectionErrors") == []
