"""A server restart: every tab reconnects (4200, then backoff) and resubscribes."""

import pytest

from tests.browser.conftest import listen_and_wait, open_tabs, wait_for_event, wait_for_stats
from tests.browser.customer_site import CustomerSite
from tests.support.clients import python_backend
from tests.support.processes import TabcastProcess

pytestmark = pytest.mark.browser


class RestartableServer:
    """A Tabcast server that can be stopped and started again on the same port and database."""

    def __init__(self):
        self.process = TabcastProcess().start()

    def restart(self, while_down) -> None:
        port, var_dir = self.process.port, self.process.var_dir
        self.process.stop()
        while_down()
        self.process = TabcastProcess(port=port, var_dir=var_dir).start(migrate=False)


@pytest.fixture(scope="module")
def restartable():
    server = RestartableServer()
    yield server
    server.process.stop()


@pytest.mark.parametrize("transport", ["shared-worker", "leader"])
def test_server_restart_every_tab_reconnects_and_resubscribes(restartable, new_context, transport):
    server = restartable.process
    app = server.create_app(f"restart-{transport}", client_events=True, demo=True)  # /demo/stats counts
    site = CustomerSite(server.http, app).start()
    try:
        pages = open_tabs(new_context(), site.url(key=app["key"], transport=transport, user="dana"), 3)
        listen_and_wait(pages, "alerts")
        listen_and_wait(pages, "presence-team")
        wait_for_stats(server, app["key"], connections=1, tabs=3)
        before = pages[0].evaluate("tabcast.connection.socket_id")

        def every_tab_notices():
            for page in pages:
                page.wait_for_function("() => tabcast.connection.state !== 'connected'")

        restartable.restart(while_down=every_tab_notices)

        for page in pages:
            page.wait_for_function("old => tabcast.connection.state === 'connected' && "
                                   "tabcast.connection.socket_id !== old", arg=before, timeout=20_000)
            page.wait_for_function("() => tabcast.channel('alerts').subscribed && "
                                   "tabcast.channel('presence-team').subscribed", timeout=10_000)
            assert page.evaluate("tabcast.channel('presence-team').members.count") == 1
        wait_for_stats(restartable.process, app["key"], connections=1, tabs=3)

        python_backend(app).trigger(["alerts"], "fire", {"level": 2})
        for page in pages:
            assert wait_for_event(page, "alerts", "fire") == [{"level": 2}]
            assert page.evaluate("states.filter(s => s === 'connected').length") == 2
    finally:
        site.stop()
