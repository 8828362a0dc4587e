"""Drive a live Tabcast server as a dashboard user and as a SharedWorker carrying several tabs."""

import http.cookiejar
import json
import re
from contextlib import ExitStack
import urllib.parse
import urllib.request

from websockets.sync.client import connect

from tests.support.processes import wait_until

_OWNER = """
from django.contrib.auth import get_user_model
from django.test import Client
from tenants.models import App, Membership
app = App.objects.get(id={app_id})
user = get_user_model().objects.create_user(username="{email}", email="{email}")
Membership.objects.create(user=user, tenant=app.tenant, role="owner")
client = Client()
client.force_login(user)
print(client.cookies["sessionid"].value)
"""


class DashboardSession:
    """A logged-in dashboard user of the team owning one app (session cookie + CSRF)."""

    def __init__(self, server, session_id: str):
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self._set_cookie("sessionid", session_id)

    @classmethod
    def owner_of(cls, server, app_id: int, email: str) -> "DashboardSession":
        session_id = server.manage("shell", "-c", _OWNER.format(app_id=app_id, email=email)).strip().splitlines()[-1]
        return cls(server, session_id)

    def use(self, server) -> "DashboardSession":
        """The same session against another server process sharing the database."""
        return DashboardSession(server, self._cookie("sessionid"))

    def _set_cookie(self, name: str, value: str) -> None:
        self.jar.set_cookie(http.cookiejar.Cookie(
            0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, True, None, None, {}))

    def _cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def get(self, path: str) -> str:
        with self.opener.open(self.server.http + path, timeout=10) as response:
            return response.read().decode()

    def get_json(self, path: str) -> dict:
        return json.loads(self.get(path))

    def post(self, path: str, fields: dict) -> dict:
        """POST a form the way the dashboard's pages do (CSRF cookie + header), JSON answer."""
        if self._cookie("csrftoken") is None:
            self.get("/login/")
        request = urllib.request.Request(
            self.server.http + path, data=urllib.parse.urlencode(fields).encode(), method="POST",
            headers={"X-CSRFToken": self._cookie("csrftoken"), "Accept": "application/json",
                     "Referer": self.server.http + "/"})
        with self.opener.open(request, timeout=10) as response:
            return json.loads(response.read().decode())

    def live(self, app_id: int) -> dict:
        return self.get_json(f"/dashboard/api/apps/{app_id}/live")

    def usage(self, app_id: int, range_name: str = "24h") -> dict:
        return self.get_json(f"/dashboard/api/apps/{app_id}/usage?range={range_name}")

    def dashboard_key(self, app_id: int) -> str:
        page = self.get(f"/dashboard/apps/{app_id}/overview/")
        return re.search(r'id="realtime" hidden data-key="([0-9a-f]+)"', page).group(1)

    def wait_for_totals(self, app_id: int, at_least: dict, timeout: float = 10) -> dict:
        """Live totals once the traffic flush (every second) has counted at least these values."""
        return wait_until(lambda: _reached(self.live(app_id)["totals"], at_least), timeout,
                          interval=0.2, what=f"live totals {at_least}")

    def wait_for_usage(self, app_id: int, at_least: dict, range_name: str = "24h", timeout: float = 10) -> dict:
        """Persisted usage summary once it reaches at least these values."""
        return wait_until(lambda: _reached(self.usage(app_id, range_name)["summary"], at_least), timeout,
                          interval=0.2, what=f"persisted usage {at_least}")


def _reached(values: dict, at_least: dict) -> dict | None:
    return values if all(values[k] >= v for k, v in at_least.items()) else None


class SharedWorkerSocket:
    """One WebSocket speaking for ``tabs`` tabs, as the SDK's SharedWorker reports them."""

    def __init__(self, server, key: str, tabs: int):
        self._closing = ExitStack()
        self.ws = self._closing.enter_context(
            connect(f"{server.ws}/app/{key}?protocol=7&client=tabcast-test", open_timeout=10))
        established = self.recv()
        assert established["event"] == "pusher:connection_established", established
        self.socket_id = json.loads(established["data"])["socket_id"]
        self.send({"event": "tabcast:tabs", "data": {"tabs": tabs}})

    def send(self, frame: dict) -> None:
        self.ws.send(json.dumps(frame))

    def recv(self, timeout: float = 10) -> dict:
        return json.loads(self.ws.recv(timeout))

    def subscribe(self, channel: str, auth: str | None = None) -> None:
        """Subscribe and wait for the answer (which also proves the tabs report was applied first)."""
        self.send({"event": "pusher:subscribe", "data": {"channel": channel, **({"auth": auth} if auth else {})}})
        answer = self.recv()
        assert answer["event"] == "pusher_internal:subscription_succeeded", answer

    def events(self, count: int, event: str, timeout: float = 10) -> list[str]:
        """The raw text of the next ``count`` frames of ``event``: exactly what the server sent."""
        texts = []
        while len(texts) < count:
            text = self.ws.recv(timeout)
            if json.loads(text).get("event") == event:
                texts.append(text)
        return texts

    def close(self) -> None:
        self._closing.close()
