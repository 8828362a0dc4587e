"""Real headless Chromium against a real Tabcast server.

Playwright cannot see a SharedWorker or its socket, so connection counts come from the
server itself (/demo/stats), polled until they match or a timeout says what was seen.
"""

import json
import os
import urllib.request

import pytest

from tests.browser.customer_site import CustomerSite
from tests.support.processes import TabcastProcess, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic"]


# Module scope, not session: a live sync Playwright keeps its event loop current on the main
# thread, and every async test that runs after it in the same session then fails to start.
@pytest.fixture(scope="module")
def playwright():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: bin/test installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(browser):
    """Factory of browser contexts (each is a separate browser profile), closed after the test."""
    contexts = []

    def make():
        context = browser.new_context()
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def server(tabcast):
    """The session's embedded Tabcast server; each module works on apps of its own.
    (Modules that restart the server or need Redis define their own.)"""
    return tabcast


@pytest.fixture(scope="module")
def customer(server):
    """A customer site on another origin (same site: 127.0.0.1, another port) and its app."""
    app = server.create_app("customer", client_events=True, demo=True)  # /demo/stats reports its counts
    site = CustomerSite(server.http, app).start()
    yield site
    site.stop()


def stats(server: TabcastProcess, key: str) -> dict:
    with urllib.request.urlopen(f"{server.http}/demo/stats?key={key}", timeout=5) as response:
        return json.load(response)


def wait_for_stats(server: TabcastProcess, key: str, timeout: float = 10, **expected) -> dict:
    """Poll the server's counts until they equal ``expected`` (e.g. connections=1, tabs=10)."""
    seen = {}

    def check():
        seen.update(stats(server, key))
        return all(seen.get(k) == v for k, v in expected.items())

    try:
        wait_until(check, timeout, interval=0.1, what=f"server counts {expected}")
    except TimeoutError:
        raise AssertionError(f"server counts never became {expected}; last seen {seen}") from None
    return seen


def open_tabs(context, url: str, count: int) -> list:
    pages = []
    for _ in range(count):
        page = context.new_page()
        page.goto(url)
        pages.append(page)
    return pages


def wait_connected(page, timeout: float = 15_000):
    page.wait_for_function("() => window.tabcast && tabcast.connection.state === 'connected'", timeout=timeout)


def listen_and_wait(pages, channel: str, timeout: float = 15_000):
    """Subscribe every page to ``channel`` and wait until each has its subscription."""
    for page in pages:
        page.evaluate("name => listen(name)", channel)
    for page in pages:
        page.wait_for_function("name => tabcast.channel(name).subscribed", arg=channel, timeout=timeout)


def wait_for_event(page, channel: str, event: str, count: int = 1, timeout: float = 15_000):
    """Wait until ``page`` recorded ``count`` events; returns their data."""
    page.wait_for_function("([c, e, n]) => eventsOf(c, e).length >= n", arg=[channel, event, count], timeout=timeout)
    return page.evaluate("([c, e]) => eventsOf(c, e).map(r => r.data)", [channel, event])
