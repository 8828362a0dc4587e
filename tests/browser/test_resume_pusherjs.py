"""The pusher-js recipe of docs/recovery.md ("pusher-js"), run as written with the real
pusher-js (tests/js) in Chromium, against a real server, across a network cut."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser.conftest import publish_numbered, resumes, wait_for_number
from tests.support.clients import JS_DIR

pytestmark = pytest.mark.browser

DOC = Path(__file__).resolve().parents[2] / "docs" / "recovery.md"
PUSHER_JS = JS_DIR / "node_modules" / "pusher-js" / "dist" / "web" / "pusher.min.js"
CHANNEL = "orders"


def recipe() -> str:
    """The first ```js block of the doc's "## pusher-js" section."""
    section = DOC.read_text().split("\n## pusher-js\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```js\n(.*?)```", section, re.S).group(1)


PAGE = """<!doctype html><meta charset="utf-8"><title>pusher-js</title>
<script src="/pusher.min.js"></script>
<script>
  const APP_KEY = {key};
  const OPTIONS = {options};
  window.reloads = 0;
  const reloadOrders = () => {{ reloads += 1; }};
  window.received = [];
  window.eventsOf = (name, event) => received.filter((r) => r.channel === name && r.event === event);
  window.record = (name) => pusher.channel(name).bind_global((event, data) => received.push({{ channel: name, event, data }}));
</script>
<script>{recipe}</script>
<script>record('orders');</script>
"""


@pytest.fixture
def site():
    """A local web server for the page (Chromium lets only a local page open a socket to 127.0.0.1):
    ``site.files[path] = (content_type, body)``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            content_type, body = server.files.get(self.path, ("text/plain", None))
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(body or b"not found")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.files = {"/pusher.min.js": ("text/javascript", PUSHER_JS.read_bytes())}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def pusherjs_page(server, site, network_link, new_context):
    """``pusherjs_page(app, received)`` -> (page, link): a page running the recipe, its socket
    through ``link``, once it received the events 1..``received`` published on the channel."""

    def make(app: dict, received: int):
        link = network_link(server.port)
        options = {"cluster": "", "wsHost": "127.0.0.1", "wsPort": link.port, "forceTLS": False,
                   "enabledTransports": ["ws"]}
        page_path = f"/{app['key']}.html"
        html = PAGE.format(key=json.dumps(app["key"]), options=json.dumps(options), recipe=recipe())
        site.files[page_path] = ("text/html; charset=utf-8", html.encode())
        page = new_context().new_page()
        page.goto(f"http://127.0.0.1:{site.server_address[1]}{page_path}")
        page.wait_for_function("c => pusher.channel(c).subscribed", arg=CHANNEL)
        publish_numbered(app, CHANNEL, 1, received)
        wait_for_number(page, CHANNEL, received)
        return page, link

    return make


def cut_and_resume(link, page, resumed: int, while_cut=None) -> None:
    """Cut the page's socket, call ``while_cut()`` while it is down, restore the link and wait
    for the page's ``resumed``-th tabcast:resumed."""
    link.cut()
    page.wait_for_function("() => pusher.connection.state !== 'connected'")
    if while_cut is not None:
        while_cut()
    link.restore()
    page.wait_for_function("([c, n]) => eventsOf(c, 'tabcast:resumed').length >= n", arg=[CHANNEL, resumed],
                           timeout=45_000)  # pusher-js waits out its own reconnection delays


def test_pusherjs_with_the_recipe_gets_what_it_missed_once_in_order(server, pusherjs_page):
    app = server.create_app("resume-pusherjs", history_size=500)
    page, link = pusherjs_page(app, received=10)

    cut_and_resume(link, page, 1, while_cut=lambda: publish_numbered(app, CHANNEL, 11, 60))
    publish_numbered(app, CHANNEL, 61, 65)
    assert wait_for_number(page, CHANNEL, 65) == list(range(1, 66))
    assert resumes(page, CHANNEL) == [{"recovered": True, "missed": 50}]
    assert page.evaluate("reloads") == 0

    # A channel unsubscribed and subscribed again starts from now, like any new subscription.
    page.evaluate("c => { pusher.unsubscribe(c); pusher.subscribe(c); record(c); }", CHANNEL)
    page.wait_for_function("c => pusher.channel(c).subscribed", arg=CHANNEL)
    publish_numbered(app, CHANNEL, 66, 66)
    assert wait_for_number(page, CHANNEL, 66)[-2:] == [65, 66]
    assert len(resumes(page, CHANNEL)) == 1


def test_pusherjs_with_the_recipe_is_told_when_messages_are_lost(server, pusherjs_page):
    app = server.create_app("resume-pusherjs-lost", history_size=5)
    page, link = pusherjs_page(app, received=1)

    # 20 messages while the socket is down; the history keeps 5.
    cut_and_resume(link, page, 1, while_cut=lambda: publish_numbered(app, CHANNEL, 2, 21))
    assert resumes(page, CHANNEL) == [{"recovered": False, "missed": 0, "reason": "too_old"}]
    assert page.evaluate("reloads") == 1

    # The next drop resumes from the stream's current position: nothing lost.
    cut_and_resume(link, page, 2)
    assert resumes(page, CHANNEL)[1] == {"recovered": True, "missed": 0}
    publish_numbered(app, CHANNEL, 22, 22)
    assert wait_for_number(page, CHANNEL, 22) == [1, 22]
    assert page.evaluate("reloads") == 1
