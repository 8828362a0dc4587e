"""The one-<script> include on a customer's site: no file of ours to host, or a one-line
worker stub; same-site and cross-site."""

import pytest

from tests.browser.conftest import listen_and_wait, open_tabs, stats, wait_for_event, wait_for_stats
from tests.browser.customer_site import CustomerSite
from tests.support.clients import python_backend

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cross_site(server):
    """The customer page on another *site* (localhost vs 127.0.0.1): the Tabcast iframe is
    third-party there."""
    app = server.create_app("cross-site", client_events=True, demo=True)  # /demo/stats counts
    site = CustomerSite(server.http, app, host="localhost").start()
    yield site
    site.stop()


def test_same_site_page_uses_the_worker_in_the_tabcast_iframe(server, customer, new_context):
    key = customer.app["key"]
    pages = open_tabs(new_context(), customer.url(key=key), 3)
    listen_and_wait(pages, "include")
    assert {page.evaluate("tabcast.transport") for page in pages} == {"shared-worker"}
    # The SDK added its hidden frame from the Tabcast host it was loaded from.
    frame_urls = pages[0].evaluate("[...document.querySelectorAll('iframe')].map(f => f.src)")
    assert len(frame_urls) == 1 and frame_urls[0].startswith(f"{server.http}/sdk/v1/frame.html?")
    wait_for_stats(server, key, connections=1, tabs=3)
    python_backend(customer.app).trigger(["include"], "hello", "plain text")
    for page in pages:
        assert wait_for_event(page, "include", "hello") == ["plain text"]


def test_cross_site_page_still_shares_one_connection(server, cross_site, new_context):
    """Browsers that block third-party storage refuse a SharedWorker in a third-party frame;
    the SDK then falls back to a leader tab on the customer's own origin by itself."""
    key = cross_site.app["key"]
    pages = open_tabs(new_context(), cross_site.url(key=key), 3)
    listen_and_wait(pages, "include")
    transports = {page.evaluate("tabcast.transport") for page in pages}
    assert len(transports) == 1 and transports <= {"shared-worker", "leader"}
    wait_for_stats(server, key, connections=1, tabs=3)
    python_backend(cross_site.app).trigger(["include"], "hello", {"ok": True})
    for page in pages:
        assert wait_for_event(page, "include", "hello") == [{"ok": True}]


def test_customer_hosted_worker_stub(server, cross_site, new_context):
    key = cross_site.app["key"]
    pages = open_tabs(new_context(), cross_site.url(key=key, workerUrl="/tabcast-worker.js"), 3)
    listen_and_wait(pages, "stub")
    assert {page.evaluate("tabcast.transport") for page in pages} == {"shared-worker"}
    assert pages[0].evaluate("document.querySelectorAll('iframe').length") == 0
    wait_for_stats(server, key, connections=1, tabs=3)
    python_backend(cross_site.app).trigger(["stub"], "hello", {"via": "stub"})
    for page in pages:
        assert wait_for_event(page, "stub", "hello") == [{"via": "stub"}]


@pytest.fixture(scope="module")
def restricted(server):
    """An app that only allows its own customer site; plus a site it does not allow."""
    app = server.create_app("restricted", client_events=True, demo=True)  # /demo/stats counts
    allowed = CustomerSite(server.http, app).start()
    server.update_app(app["app_id"], allowed_origins=allowed.origin)
    intruder = CustomerSite(server.http, app, host="localhost").start()
    yield allowed, intruder
    allowed.stop()
    intruder.stop()


def test_app_with_allowed_origins_works_through_the_iframe_and_refuses_other_sites(server, restricted, new_context):
    allowed, intruder = restricted
    key = allowed.app["key"]
    pages = open_tabs(new_context(), allowed.url(key=key), 2)
    listen_and_wait(pages, "orders")
    assert {page.evaluate("tabcast.transport") for page in pages} == {"shared-worker"}
    wait_for_stats(server, key, connections=1, tabs=2)

    # Another site may not frame the worker (frame-ancestors) nor connect itself (Origin).
    (stranger,) = open_tabs(new_context(), intruder.url(key=key), 1)
    stranger.wait_for_function("() => tabcast.connection.state === 'failed'", timeout=20_000)
    assert stats(server, key)["connections"] == 1
