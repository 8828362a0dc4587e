"""The dashboard's browser snippet, pasted as-is into a customer's page, receives events in Chromium."""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# The headless Chromium fixtures of the SDK browser suite (browser needs playwright).
from tests.browser.conftest import browser, playwright  # noqa: F401
from tests.support.clients import python_backend

from .test_live_server import Dashboard, snippet

pytestmark = pytest.mark.browser

SUBSCRIBED = "() => { const c = tabcast.channel('my-channel'); return Boolean(c && c.subscribed); }"


class CustomerPage:
    """The customer's site on another origin (localhost, not 127.0.0.1): one page holding the snippet."""

    def __init__(self, code: str):
        body = f"<!doctype html><html><head><meta charset='utf-8'></head><body>{code}</body></html>".encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_pasted_browser_snippet_receives_a_published_event(tabcast, browser):  # noqa: F811
    dashboard = Dashboard(tabcast.http)
    app_id = dashboard.sign_up_and_create_app()
    revealed = dashboard.post(f"/dashboard/apps/{app_id}/reveal/", {}).text
    app = {"app_id": app_id, "host": "127.0.0.1", "port": tabcast.port,
           "key": re.search(r"data-app-key>([^<]+)<", revealed).group(1),
           "secret": re.search(r"data-app-secret>([^<]+)<", revealed).group(1)}
    site = CustomerPage(snippet(revealed, "browser"))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.url)
        page.wait_for_function(SUBSCRIBED, timeout=15_000)
        # The snippet's handler logs the event's data to the console.
        with page.expect_console_message(lambda message: message.args[0].json_value() == {"hello": "world"},
                                         timeout=15_000):
            python_backend(app).trigger(["my-channel"], "my-event", {"hello": "world"})
    finally:
        context.close()
        site.stop()
