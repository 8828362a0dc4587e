"""The debug console's channel history (docs/recovery.md): the last messages of a channel with
their positions, as JSON for the console's script and as the page without it."""

import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.urls import reverse

from tests.support.clients import python_backend

from .support import DashboardSession


def console_history(owner: DashboardSession, app_id: int, channel: str, as_json: bool = True) -> tuple[int, str]:
    url = f"{owner.server.http}/dashboard/apps/{app_id}/console/history/?{urllib.parse.urlencode({'channel': channel})}"
    request = urllib.request.Request(url, headers={"Accept": "application/json" if as_json else "text/html"})
    try:
        with owner.opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_console_shows_a_channels_history_with_positions(tabcast, app):
    owner = DashboardSession.owner_of(tabcast, app["app_id"], f"history-{app['app_id']}@metering.test")
    backend = python_backend(app)
    for i in range(3):
        backend.trigger(["orders"], f"order-{i}", {"id": i})
    backend.trigger(["elsewhere"], "other", {})

    status, text = console_history(owner, app["app_id"], "orders")
    assert status == 200
    history = json.loads(text)
    assert [m["event"] for m in history["messages"]] == ["order-0", "order-1", "order-2"]
    assert [json.loads(m["data"]) for m in history["messages"]] == [{"id": 0}, {"id": 1}, {"id": 2}]
    positions = [m["position"] for m in history["messages"]]
    assert history["position"] == positions[-1] and len(set(positions)) == 3
    assert (history["channel"], history["history"]) == ("orders", True)

    status, page = console_history(owner, app["app_id"], "orders", as_json=False)
    assert status == 200
    rows = re.findall(r'<tr class="history-row"><td class="mono">([^<]+)</td><td class="mono">([^<]+)</td>', page)
    assert rows == list(zip(positions, ["order-0", "order-1", "order-2"]))
    assert f"3 messages on orders, oldest first; position now {positions[-1]}." in page

    status, text = console_history(owner, app["app_id"], "bad channel!")
    assert status == 400 and "channel" in json.loads(text)["errors"]


def test_console_says_when_the_app_keeps_no_history(tabcast, app):
    tabcast.update_app(app["app_id"], history_size=0)
    owner = DashboardSession.owner_of(tabcast, app["app_id"], f"nohistory-{app['app_id']}@metering.test")
    python_backend(app).trigger(["orders"], "e", {})
    status, text = console_history(owner, app["app_id"], "orders")
    assert status == 200
    assert json.loads(text) == {"channel": "orders", "history": False, "position": None, "messages": [],
                                "more": False}
    status, page = console_history(owner, app["app_id"], "orders", as_json=False)
    assert status == 200 and "This app keeps no history." in page and "off for this app" in page


def test_console_history_form_is_on_the_console(alice_client, alice_app):
    page = alice_client.get(reverse("live:console", args=[alice_app.id])).content.decode()
    assert 'id="history-form"' in page and reverse("live:channel_history", args=[alice_app.id]) in page
    assert "this app keeps 100 per channel for 120 s" in page


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_console_history_refuses_an_invalid_channel_without_asking_the_node(alice_client, alice_app, accept):
    response = alice_client.get(reverse("live:channel_history", args=[alice_app.id]), {"channel": "no spaces"},
                                HTTP_ACCEPT=accept)
    assert response.status_code == 400


def test_console_history_of_another_teams_app_is_404(alice_client, bob_app):
    response = alice_client.get(reverse("live:channel_history", args=[bob_app.id]), {"channel": "orders"})
    assert response.status_code == 404


def test_console_history_needs_login(client, alice_app):
    response = client.get(reverse("live:channel_history", args=[alice_app.id]), {"channel": "orders"})
    assert response.status_code == 302 and response.url.startswith(reverse("tenants:login"))
