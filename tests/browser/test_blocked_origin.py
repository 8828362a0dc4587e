"""A customer page on an origin the app does not allow: the SDK says so clearly.

Whatever the transport (the Tabcast iframe's SharedWorker, a leader tab or the page's own
socket), the connection ends in ``failed`` with the reason ``origin_not_allowed``, one
console.error tells the fix, and the SDK does not keep retrying.
"""

import pytest

from tests.browser.conftest import open_tabs, wait_connected
from tests.browser.customer_site import CustomerSite

pytestmark = pytest.mark.browser

FAILED_WITH_REASON = ("() => tabcast.connection.state === 'failed' && tabcast.connection.failure"
                      " && tabcast.connection.failure.reason === 'origin_not_allowed'")


@pytest.fixture(scope="module")
def sites(server):
    """An app allowing only its own site (127.0.0.1:port), and a site on another origin (localhost)."""
    app = server.create_app("blocked-origin")
    allowed = CustomerSite(server.http, app).start()
    server.update_app(app["app_id"], allowed_origins=allowed.origin)
    blocked = CustomerSite(server.http, app, host="localhost").start()
    yield allowed, blocked
    allowed.stop()
    blocked.stop()


def _watch(page):
    """Record the page's console errors and the WebSockets it opens itself."""
    errors, sockets = [], []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("websocket", lambda ws: sockets.append(ws.url))
    return errors, sockets


def _fix_messages(errors, origin):
    return [e for e in errors if "origin_not_allowed" in e and f"add {origin} to the app's Allowed origins" in e]


def test_iframe_refusal_fails_at_once_with_the_reason_and_the_fix(server, sites, new_context):
    allowed, blocked = sites
    page = new_context().new_page()
    errors, sockets = _watch(page)
    page.goto(blocked.url(key=blocked.app["key"]))
    page.wait_for_function(FAILED_WITH_REASON, timeout=20_000)
    failure = page.evaluate("tabcast.connection.failure")
    assert failure["reason"] == "origin_not_allowed" and failure["code"] == 4009
    assert blocked.origin in failure["message"]
    # The frame answered "not allowed" itself: no fallback transport opened a socket to be refused,
    # and no CSP frame-ancestors block was needed to find out.
    assert sockets == []
    assert page.evaluate("states") == ["failed"]  # (bound after the constructor set "connecting")
    assert len(_fix_messages(errors, blocked.origin)) == 1, errors
    assert not [e for e in errors if "frame-ancestors" in e], errors


@pytest.mark.parametrize("transport", ["direct", "leader"])
def test_refused_socket_fails_with_the_reason_and_does_not_retry(server, sites, new_context, transport):
    allowed, blocked = sites
    page = new_context().new_page()
    errors, sockets = _watch(page)
    # The failed event carries the reason too (bound before the connection starts).
    page.add_init_script("""window.failedEvents = [];
        window.addEventListener('DOMContentLoaded', () => {
            tabcast.connection.bind('failed', (f) => failedEvents.push(f && f.reason));
        });""")
    page.goto(blocked.url(key=blocked.app["key"], transport=transport))
    page.wait_for_function(FAILED_WITH_REASON, timeout=20_000)
    assert page.evaluate("tabcast.connection.failure.code") == 4009
    assert page.evaluate("failedEvents") == ["origin_not_allowed"]
    assert len(_fix_messages(errors, blocked.origin)) == 1, errors

    # No retry: the page's backoff starts at 200 ms (customer_site.py), so a retrying SDK would
    # have opened a second socket within 200 ms; give it five times that.
    page.wait_for_timeout(1000)
    assert len(sockets) == 1, sockets
    assert page.evaluate("states") == ["failed"]  # (bound after the constructor set "connecting")
    assert len(_fix_messages(errors, blocked.origin)) == 1, errors


def test_allowed_origin_is_unaffected(server, sites, new_context):
    allowed, _ = sites
    (page,) = open_tabs(new_context(), allowed.url(key=allowed.app["key"]), 1)
    wait_connected(page)
    assert page.evaluate("tabcast.connection.failure") is None
    assert page.evaluate("tabcast.transport") == "shared-worker"
