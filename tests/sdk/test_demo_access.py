"""/demo/ acts for an app with nothing but its public key, so it serves only apps that have it
switched on (by their team, or `create_app --demo` / `seed_demo` for the operator's), and the app's
own team when logged in (issue 9, finding 3).

The attack is replayed against a real server: tenant B signs up in the dashboard and has a real
subscriber on the demo's channels; a stranger who learned B's public key (it is in B's web
pages) tries every demo endpoint. The subscriber must receive nothing from the stranger: proven
by a marker B publishes afterwards through its own signed API, which must be the first and only
thing the subscriber receives.
"""

import asyncio
import json
import re
import uuid

import pytest
import requests

from service.realtime import signatures
from tests.support.clients import python_backend
from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient, data_of
from tests.support.teams import PASSWORD

DEMO = "tabcast-demo"
CHANNELS = (DEMO, f"private-{DEMO}", f"presence-{DEMO}")


@pytest.fixture(scope="module")
def server():
    process = TabcastProcess().start()
    yield process
    process.stop()


class Browser:
    """A requests session that behaves like a browser: cookies, and CSRF tokens on POSTs."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=10, allow_redirects=False)

    def post(self, path: str, data: dict) -> requests.Response:
        if "csrftoken" not in self.session.cookies:
            self.get("/login/")  # any page of the site hands out a CSRF cookie
        data = {**data, "csrfmiddlewaretoken": self.session.cookies["csrftoken"]}
        return self.session.post(f"{self.base}{path}", data=data, timeout=10, allow_redirects=False,
                                 headers={"Referer": f"{self.base}/"})


class Tenant:
    """A customer who signed up in the dashboard and made an app there (not an operator app)."""

    def __init__(self, server):
        self.dashboard = Browser(server.http)
        email = f"tenant-{uuid.uuid4().hex[:8]}@example.com"
        assert self.dashboard.post("/signup/", {"email": email, "password": PASSWORD}).status_code == 302
        created = self.dashboard.post("/dashboard/apps/new/", {"name": "Shop"})
        self.app_id = int(re.fullmatch(r"/dashboard/apps/(\d+)/", created.headers["Location"]).group(1))
        page = self.dashboard.post(f"/dashboard/apps/{self.app_id}/reveal/", {}).text
        self.app = {"app_id": self.app_id, "key": re.search(r"data-app-key>([^<]+)<", page).group(1),
                    "secret": re.search(r"data-app-secret>([^<]+)<", page).group(1),
                    "host": "127.0.0.1", "port": server.port}

    def set_demo(self, enabled: bool) -> str:
        """Switch the public demo in the app's Settings form, as the owner does; returns the page."""
        form = {"name": "Shop", "max_message_bytes": 10240, "allowed_origins": ""}
        if enabled:
            form["demo_enabled"] = "on"
        response = self.dashboard.post(f"/dashboard/apps/{self.app_id}/settings/", form)
        assert response.status_code == 302, response.text[:2000]
        return self.dashboard.get(f"/dashboard/apps/{self.app_id}/settings/").text


async def subscriber_of(server, app: dict) -> RawClient:
    """A real subscriber of the app on the demo's three channels, signed with the app's own secret."""
    client = await RawClient.established(server, app["key"])
    backend = python_backend(app)
    for channel in CHANNELS:
        data = {}
        if channel.startswith("private-"):
            data = backend.authenticate(channel=channel, socket_id=client.socket_id)
        elif channel.startswith("presence-"):
            data = backend.authenticate(channel=channel, socket_id=client.socket_id,
                                        custom_data={"user_id": "owner"})
        reply = await client.subscribe(channel, **data)
        assert reply["event"] == "pusher_internal:subscription_succeeded", reply
    return client


async def only_the_marker(client: RawClient, app: dict) -> None:
    """Publish a marker on every demo channel through the app's signed API; the next frames the
    subscriber reads must be exactly those markers (so nothing arrived before them)."""
    marker = uuid.uuid4().hex
    await asyncio.to_thread(python_backend(app).trigger, list(CHANNELS), "marker", {"marker": marker})
    seen = [await client.recv(timeout=10) for _ in CHANNELS]
    assert sorted((f["event"], f["channel"], data_of(f).get("marker")) for f in seen) == sorted(
        ("marker", channel, marker) for channel in CHANNELS), seen
    await client.ping_pong()  # and nothing after them either (pong is the next frame)


def stranger_tries_everything(server, key: str, socket_id: str, stranger: Browser | None = None,
                              ) -> dict[str, requests.Response]:
    stranger = stranger or Browser(server.http)
    tries = {
        "page": stranger.get(f"/demo/?key={key}"),
        "tab": stranger.get(f"/demo/tab?key={key}"),
        "stats": stranger.get(f"/demo/stats?key={key}"),
    }
    for channel in CHANNELS:
        tries[f"publish {channel}"] = stranger.post(f"/demo/publish?key={key}",
                                                    {"text": "a stranger's message", "channel": channel})
    for channel in CHANNELS[1:]:
        tries[f"auth {channel}"] = stranger.post(f"/demo/auth?key={key}",
                                                 {"socket_id": socket_id, "channel_name": channel})
    return tries


async def test_a_stranger_with_a_tenants_key_gets_nothing_from_the_demo(server):
    b = await asyncio.to_thread(Tenant, server)
    subscriber = await subscriber_of(server, b.app)
    stranger_socket = await RawClient.established(server, b.app["key"])  # the key is public: this works
    other_tenant = await asyncio.to_thread(Tenant, server)  # logged in, but on another team
    try:
        tries = await asyncio.to_thread(stranger_tries_everything, server, b.app["key"], stranger_socket.socket_id)
        logged_in = await asyncio.to_thread(stranger_tries_everything, server, b.app["key"],
                                            stranger_socket.socket_id, other_tenant.dashboard)
        assert {name: r.status_code for name, r in logged_in.items()} == {name: 404 for name in logged_in}
        for name, response in tries.items():
            assert response.status_code == 404, (name, response.status_code, response.text[:300])
            assert b.app["key"] not in response.text or name in ("page", "tab")
        for name in ("page", "tab"):
            assert "No demo for this key" in tries[name].text
            assert 'data-key="' not in tries[name].text
        for name, response in tries.items():
            if name not in ("page", "tab"):
                body = response.json()
                assert set(body) == {"error"} and "switched its public demo on" in body["error"], (name, body)

        # Had any signature leaked, the stranger's socket could now join B's channels.
        for name in ("auth private-tabcast-demo", "auth presence-tabcast-demo"):
            auth = tries[name].json().get("auth")
            if auth:
                channel = name.split()[1]
                await stranger_socket.subscribe(channel, auth=auth, channel_data=tries[name].json().get("channel_data"))
        await only_the_marker(subscriber, b.app)
    finally:
        await stranger_socket.close()
        await subscriber.close()


async def test_the_demo_works_for_an_app_whose_owner_switched_it_on_and_stops_when_switched_off(server):
    b = await asyncio.to_thread(Tenant, server)
    settings_page = await asyncio.to_thread(b.set_demo, True)
    assert "Public demo page" in settings_page and f"/demo/?key={b.app['key']}" in settings_page

    subscriber = await subscriber_of(server, b.app)
    try:
        visitor = Browser(server.http)
        page = await asyncio.to_thread(visitor.get, f"/demo/?key={b.app['key']}")
        assert page.status_code == 200 and f'data-key="{b.app["key"]}"' in page.text
        assert (await asyncio.to_thread(visitor.get, f"/demo/stats?key={b.app['key']}")).json() == {
            "connections": 1, "tabs": 1}

        sent = await asyncio.to_thread(visitor.post, f"/demo/publish?key={b.app['key']}",
                                       {"text": "hello from the demo", "channel": DEMO})
        assert sent.status_code == 200, sent.text
        frame = await subscriber.recv_event("message", timeout=10)
        assert (frame["channel"], data_of(frame)["text"]) == (DEMO, "hello from the demo")

        signed = await asyncio.to_thread(visitor.post, f"/demo/auth?key={b.app['key']}",
                                         {"socket_id": "1.2", "channel_name": f"private-{DEMO}"})
        assert signed.status_code == 200
        message = signatures.channel_auth_message("1.2", f"private-{DEMO}", None)
        assert signed.json()["auth"] == f"{b.app['key']}:{signatures.sign(b.app['secret'], message)}"

        # Switched off again: refused at once (the test server caches app settings for 0 s).
        settings_page = await asyncio.to_thread(b.set_demo, False)
        assert f"/demo/?key={b.app['key']}" not in settings_page
        tries = await asyncio.to_thread(stranger_tries_everything, server, b.app["key"], "1.2")
        assert {name: r.status_code for name, r in tries.items()} == {name: 404 for name in tries}
        await only_the_marker(subscriber, b.app)
    finally:
        await subscriber.close()


async def test_the_apps_own_team_may_try_the_demo_while_it_is_off_for_everyone_else(server):
    b = await asyncio.to_thread(Tenant, server)
    subscriber = await subscriber_of(server, b.app)
    try:
        owner = b.dashboard  # logged in to the dashboard, on the app's team
        assert (await asyncio.to_thread(owner.get, f"/demo/?key={b.app['key']}")).status_code == 200
        assert (await asyncio.to_thread(owner.get, f"/demo/stats?key={b.app['key']}")).json() == {
            "connections": 1, "tabs": 1}
        sent = await asyncio.to_thread(owner.post, f"/demo/publish?key={b.app['key']}", {"text": "from my team"})
        assert sent.status_code == 200, sent.text
        frame = await subscriber.recv(timeout=10)
        assert (frame["event"], frame["channel"], data_of(frame)["text"]) == ("message", DEMO, "from my team")
        stranger = await asyncio.to_thread(Browser(server.http).get, f"/demo/stats?key={b.app['key']}")
        assert stranger.status_code == 404
    finally:
        await subscriber.close()


def test_the_operators_demo_app_from_seed_demo_keeps_working(server):
    printed = server.manage("seed_demo", "--base-url", server.http)
    link = re.search(r"Shared-socket demo\s+(\S+)", printed).group(1)
    key = link.split("key=")[1]
    assert server.manage("seed_demo", "--base-url", server.http).count(link) == 1  # again: same link

    visitor = Browser(server.http)
    assert visitor.session.get(link, timeout=10).status_code == 200
    assert visitor.get(f"/demo/tab?key={key}").status_code == 200
    assert visitor.get(f"/demo/stats?key={key}").json() == {"connections": 0, "tabs": 0}
    sent = visitor.post(f"/demo/publish?key={key}", {"text": "hi", "channel": f"presence-{DEMO}"})
    assert sent.status_code == 200, sent.text
    signed = visitor.post(f"/demo/auth?key={key}", {"socket_id": "3.4", "channel_name": f"presence-{DEMO}"})
    assert signed.status_code == 200 and signed.json()["auth"].startswith(f"{key}:")


def test_an_operator_app_serves_the_demo_only_when_made_with_demo_on(server):
    plain, demo = server.create_app("operator app"), server.create_app("operator demo", demo=True)
    assert requests.get(f"{server.http}/demo/stats?key={plain['key']}", timeout=10).status_code == 404
    assert requests.get(f"{server.http}/demo/stats?key={demo['key']}", timeout=10).json() == {
        "connections": 0, "tabs": 0}


@pytest.mark.parametrize("key", ["unknown", "x" * 5000, "bad key\n", ""])
def test_an_unknown_key_gets_a_clear_404_from_every_demo_url(server, key):
    visitor = Browser(server.http)
    for path in ("/demo/", "/demo/tab"):
        response = visitor.session.get(f"{server.http}{path}", params={"key": key}, timeout=10)
        assert response.status_code == 404 and "No demo for this key" in response.text
    response = visitor.session.get(f"{server.http}/demo/stats", params={"key": key}, timeout=10)
    assert response.status_code == 404 and "error" in response.json()
    for path, data in (("/demo/publish", {"text": "hi"}), ("/demo/auth", {"socket_id": "1.2",
                                                                           "channel_name": f"private-{DEMO}"})):
        visitor.get("/login/")
        response = visitor.session.post(f"{server.http}{path}", params={"key": key}, timeout=10,
                                        data={**data, "csrfmiddlewaretoken": visitor.session.cookies["csrftoken"]})
        assert response.status_code == 404 and "error" in response.json(), (path, response.text[:300])


def test_a_disabled_app_gets_no_demo_even_when_it_was_switched_on(server):
    app = server.create_app("off", demo_enabled=True, enabled=False)
    assert requests.get(f"{server.http}/demo/stats?key={app['key']}", timeout=10).status_code == 404
    assert json.loads(server.manage("update_app", str(app["app_id"]), "enabled=true"))["enabled"] is True
    assert requests.get(f"{server.http}/demo/stats?key={app['key']}", timeout=10).status_code == 200
