"""End to end on a real server: what the dashboard saves is what the WebSocket server enforces,
and the getting-started snippets publish for real."""

import asyncio
import html
import json
import re
import subprocess
import sys
import uuid

import pytest
import requests
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support.teams import PASSWORD

GOOD_ORIGIN = "https://shop.example.com"


class Dashboard:
    """A browser-like session on the live server's dashboard (cookies and CSRF tokens)."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def post(self, path: str, data: dict) -> requests.Response:
        if "csrftoken" not in self.session.cookies:
            self.session.get(f"{self.base}{path}")
        data = {**data, "csrfmiddlewaretoken": self.session.cookies["csrftoken"]}
        return self.session.post(f"{self.base}{path}", data=data, allow_redirects=False)

    def sign_up_and_create_app(self) -> int:
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        assert self.post("/signup/", {"email": email, "password": PASSWORD}).status_code == 302
        response = self.post("/dashboard/apps/new/", {"name": "Shop"})
        return int(re.fullmatch(r"/dashboard/apps/(\d+)/", response.headers["Location"]).group(1))


@pytest.fixture
def dashboard(tabcast):
    return Dashboard(tabcast.http)


def snippet(page: str, name: str) -> str:
    code = re.search(rf'<pre id="snippet-{name}"[^>]*><code>(.*?)</code></pre>', page, re.S).group(1)
    return html.unescape(code)


async def first_frame(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_allowed_origins_set_in_the_dashboard_are_enforced_on_connect(tabcast, dashboard):
    app_id = dashboard.sign_up_and_create_app()
    response = dashboard.post(f"/dashboard/apps/{app_id}/settings/", {
        "name": "Shop", "max_message_bytes": 10240, "allowed_origins": f"{GOOD_ORIGIN}\n*.partner.example"})
    assert response.status_code == 302
    page = dashboard.session.get(f"{tabcast.http}/dashboard/apps/{app_id}/").text
    key = re.search(r"data-app-key>([^<]+)<", page).group(1)
    url = f"{tabcast.ws}/app/{key}?protocol=7&client=js&version=8.4.0"

    for origin in (GOOD_ORIGIN, "https://eu.partner.example"):
        async with websockets.connect(url, origin=origin) as ws:
            assert (await first_frame(ws))["event"] == "pusher:connection_established"

    async with websockets.connect(url, origin="https://evil.example") as ws:
        frame = await first_frame(ws)
        assert frame["event"] == "pusher:error"
        assert frame["data"]["code"] == 4009
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 4009


async def test_disabling_in_the_dashboard_refuses_connections_and_publishes(tabcast, dashboard):
    app_id = dashboard.sign_up_and_create_app()
    page = dashboard.post(f"/dashboard/apps/{app_id}/reveal/", {}).text
    assert dashboard.post(f"/dashboard/apps/{app_id}/status/", {"enabled": "0"}).status_code == 302

    async with websockets.connect(f"{tabcast.ws}/app/{re.search(r'data-app-key>([^<]+)<', page).group(1)}") as ws:
        frame = await first_frame(ws)
        assert (frame["event"], frame["data"]["code"]) == ("pusher:error", 4003)
    result = subprocess.run(["bash", "-c", snippet(page, "curl") + " -s -o /dev/null -w '%{http_code}'"],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout == "403"


async def test_getting_started_snippets_publish_to_a_subscriber(tabcast, dashboard):
    app_id = dashboard.sign_up_and_create_app()
    page = dashboard.post(f"/dashboard/apps/{app_id}/reveal/", {}).text
    key = re.search(r"data-app-key>([^<]+)<", page).group(1)
    assert f'<script src="{tabcast.http}/sdk/v1/tabcast.js"></script>' in snippet(page, "browser")

    async with websockets.connect(f"{tabcast.ws}/app/{key}?protocol=7") as ws:
        assert (await first_frame(ws))["event"] == "pusher:connection_established"
        await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "my-channel"}}))
        assert (await first_frame(ws))["event"] == "pusher_internal:subscription_succeeded"

        for command in ([sys.executable, "-c", snippet(page, "python")], ["bash", "-c", snippet(page, "curl")]):
            result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
            frame = await first_frame(ws)
            assert (frame["event"], frame["channel"]) == ("my-event", "my-channel")
            assert json.loads(frame["data"]) == {"hello": "world"}


CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


def test_the_dashboards_assets_are_served_by_the_server_itself(tabcast):
    page = requests.get(f"{tabcast.http}/login/", timeout=10).text
    assets = set(re.findall(r'(?:href|src)="(/static/tabcast/[^"]+)"', page))
    assert {a.rsplit(".", 1)[1] for a in assets} == {"css", "js", "svg"}
    for asset in assets:
        response = requests.get(f"{tabcast.http}{asset}", timeout=10)
        assert response.status_code == 200, asset
        assert response.headers["Content-Type"].startswith(CONTENT_TYPES["." + asset.rsplit(".", 1)[1]])
