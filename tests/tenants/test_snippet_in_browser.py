"""The dashboard's browser snippet, pasted as-is into a customer's page, receives events in Chromium."""

import asyncio
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import async_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
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


async def test_pasted_browser_snippet_receives_a_published_event(tabcast):
    # Playwright's async API: other suites keep a sync Playwright open for the whole session,
    # and a second sync one cannot start beside it.
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: bin/test installs Debian's chromium")
    dashboard = Dashboard(tabcast.http)
    app_id = dashboard.sign_up_and_create_app()
    revealed = dashboard.post(f"/dashboard/apps/{app_id}/reveal/", {}).text
    app = {"app_id": app_id, "host": "127.0.0.1", "port": tabcast.port,
           "key": re.search(r"data-app-key>([^<]+)<", revealed).group(1),
           "secret": re.search(r"data-app-secret>([^<]+)<", revealed).group(1)}
    site = CustomerPage(snippet(revealed, "browser"))
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(site.url)
            await page.wait_for_function(SUBSCRIBED, timeout=15_000)
            # The snippet's handler logs the event's data to the console.
            logged = asyncio.get_running_loop().create_future()
            page.on("console", lambda message: logged.done() or logged.set_result(message))
            await asyncio.to_thread(python_backend(app).trigger, ["my-channel"], "my-event", {"hello": "world"})
            message = await asyncio.wait_for(logged, 15)
            assert await message.args[0].json_value() == {"hello": "world"}
            await browser.close()
    finally:
        site.stop()
