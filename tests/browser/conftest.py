"""Real headless Chromium against a real Tabcast server.

Playwright cannot see a SharedWorker or its socket, so connection counts come from the
server itself (/demo/stats), polled until they match or a timeout says what was seen.
"""

import json
import os
import socket
import threading
import urllib.request

import pytest

from tests.browser.customer_site import CustomerSite
from tests.support.clients import python_backend
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


@pytest.fixture(scope="module")
def bfcache_browser(playwright):
    """A browser with the back/forward cache on (Playwright turns it off by default)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                         ignore_default_args=["--disable-back-forward-cache"])
    yield browser
    browser.close()


@pytest.fixture
def bfcache_context(bfcache_browser):
    context = bfcache_browser.new_context()
    context.set_default_timeout(15_000)
    yield context
    context.close()


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


class NetworkLink:
    """The browser's way to Tabcast: a TCP proxy that the test can cut and restore. A cut drops
    every open connection; new ones then hang, as on a dead network, and go through once the
    link is restored (so a client reconnects at once, whatever its backoff). A SharedWorker's
    socket is out of Playwright's reach, so cutting it here works for every transport alike.

    It forwards to the first of ``ports`` that accepts, as a load balancer does: once a
    process is dead, the next connection goes to the next one. Load the SDK from ``http``."""

    def __init__(self, *ports: int):
        self.ports = list(ports)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.is_cut = False
        self.held: list[socket.socket] = []  # connections made while cut
        self.pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "NetworkLink":
        self.thread.start()
        return self

    def cut(self) -> None:
        """Drop every open connection; hold new ones until ``restore()``."""
        with self.lock:
            self.is_cut = True
            pairs, self.pairs = self.pairs, set()
        for pair in pairs:
            self._close(pair)

    def restore(self) -> None:
        with self.lock:
            self.is_cut = False
            held, self.held = self.held, []
        for client in held:
            self._forward(client)

    def stop(self) -> None:
        self.cut()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.listener.close()
        self.thread.join(5)
        for client in self.held:
            client.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stopped
            with self.lock:
                if self.is_cut:
                    self.held.append(client)
                    continue
            self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        upstream = None
        for port in self.ports:
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                continue
        if upstream is None:
            client.close()
            return
        pair = (client, upstream)
        with self.lock:
            if self.is_cut:  # cut while we were connecting
                self._close(pair)
                return
            self.pairs.add(pair)
        for source, target in (pair, pair[::-1]):
            threading.Thread(target=self._pump, args=(source, target, pair), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, pair) -> None:
        try:
            source.settimeout(None)
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        with self.lock:
            self.pairs.discard(pair)
        self._close(pair)

    @staticmethod
    def _close(pair) -> None:
        for sock in pair:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


@pytest.fixture
def network_link():
    """Factory of ``NetworkLink`` proxies (``network_link(port, ...)``), stopped after the test."""
    links = []

    def make(*ports: int) -> NetworkLink:
        link = NetworkLink(*ports).start()
        links.append(link)
        return link

    yield make
    for link in links:
        link.stop()


@pytest.fixture
def customer_sites():
    """Factory of customer sites (``customer_sites(tabcast_http, app)``), stopped after the test:
    for a module's own server, or to reach Tabcast through a ``network_link``."""
    sites = []

    def make(tabcast_http: str, app: dict) -> CustomerSite:
        site = CustomerSite(tabcast_http, app).start()
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.stop()


def publish_numbered(app: dict, channel: str, first: int, last: int) -> None:
    """Publish events "n" with data {"n": first}...{"n": last} over HTTP, in order, ten a request."""
    backend = python_backend(app)
    numbers = list(range(first, last + 1))
    for i in range(0, len(numbers), 10):
        backend.trigger_batch([{"channel": channel, "name": "n", "data": {"n": n}} for n in numbers[i:i + 10]])


def wait_for_number(page, channel: str, number: int, timeout: float = 30_000) -> list[int]:
    """Wait until ``page`` received event "n" number ``number``; returns every n it received, in order."""
    page.wait_for_function("([c, n]) => eventsOf(c, 'n').some(r => r.data.n === n)", arg=[channel, number],
                           timeout=timeout)
    return page.evaluate("c => eventsOf(c, 'n').map(r => r.data.n)", channel)


def resumes(page, channel: str) -> list[dict]:
    """The ``tabcast:resumed`` events ``page`` received on ``channel``."""
    return page.evaluate("c => eventsOf(c, 'tabcast:resumed').map(r => r.data)", channel)
