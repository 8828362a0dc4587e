"""Issue 13, customers: webhooks are configured in the app's Settings (URL and which events), a
button sends a signed test webhook, and the page lists the last delivery attempts with their
HTTP status, whichever process sent them (they are kept in the database)."""

import json
import re
import urllib.parse
import urllib.request

import pytest
from django.urls import reverse
from websockets.sync.client import connect

from service.realtime import signatures
from tenants import services, webhook_log
from tenants.models import WEBHOOK_EVENTS, App, WebhookAttempt
from tests.metering.support import DashboardSession
from tests.support.clients import python_backend
from tests.support.webhooks import Receiver
from tests.support.processes import TabcastProcess, wait_until


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


# --- the form, in-process -------------------------------------------------------------------

def settings_fields(app, **changes) -> dict:
    fields = {"name": app.name, "max_message_bytes": app.max_message_bytes, "allowed_origins": "",
              "webhook_url": "", "webhook_events": []}
    fields.update(changes)
    return fields


@pytest.mark.django_db
def test_settings_save_the_webhook_url_and_events(alice_client, alice_app):
    url = reverse("tenants:app_settings", args=[alice_app.id])
    page = alice_client.get(url).content.decode()
    for name in WEBHOOK_EVENTS:  # a new app sends every event, as before
        assert re.search(rf'<input type="checkbox" name="webhook_events" value="{name}"[^>]* checked', page), name

    response = alice_client.post(url, settings_fields(
        alice_app, webhook_url="https://hooks.example.com/pusher", webhook_events=["channel_vacated", "cache_miss"]))
    assert response.status_code == 302
    alice_app.refresh_from_db()
    assert alice_app.webhook_url == "https://hooks.example.com/pusher"
    assert alice_app.webhook_event_names == ("channel_vacated", "cache_miss")
    info = services.load_app(app_id=alice_app.id)
    assert info.webhook_url == alice_app.webhook_url
    assert info.webhook_events == frozenset({"channel_vacated", "cache_miss"})

    page = alice_client.get(url).content.decode()
    checked = set(re.findall(r'name="webhook_events" value="(\w+)"[^>]* checked', page))
    assert checked == {"channel_vacated", "cache_miss"}
    detail = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    assert "https://hooks.example.com/pusher" in detail and "channel_vacated, cache_miss" in detail


@pytest.mark.django_db
def test_settings_refuse_a_webhook_url_that_is_not_http(alice_client, alice_app):
    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]),
                                 settings_fields(alice_app, webhook_url="ftp://example.com/x"))
    assert response.status_code == 200 and response.context["form"].errors["webhook_url"]
    alice_app.refresh_from_db()
    assert alice_app.webhook_url == ""


@pytest.mark.django_db
def test_the_test_button_respects_the_private_address_protection(alice_client, alice_app, receiver, settings):
    settings.TABCAST = {**settings.TABCAST, "WEBHOOKS_ALLOW_PRIVATE": False}
    App.objects.filter(id=alice_app.id).update(webhook_url=receiver.url)
    response = alice_client.post(reverse("tenants:app_webhook_test", args=[alice_app.id]), follow=True)
    page = response.content.decode()
    assert "private or unresolvable address" in page
    attempt = WebhookAttempt.objects.get(app=alice_app)
    assert attempt.test and attempt.status is None and "private" in attempt.error
    # The refusal is decided before any request is made, and the view returned after it.
    assert receiver.requests.empty()


@pytest.mark.django_db
def test_only_the_last_attempts_are_kept(alice_app, bob_app):
    from service.realtime.webhooks import Attempt

    for i in range(WebhookAttempt.KEEP + 5):
        webhook_log.record(alice_app.id, Attempt(1_700_000_000 + i, "https://x.example", ("channel_occupied",), 200 + i))
    webhook_log.record(bob_app.id, Attempt(1_700_000_000, "https://y.example", ("cache_miss",), 500))
    statuses = [a.status for a in webhook_log.recent(alice_app)]
    assert statuses == list(range(200 + WebhookAttempt.KEEP + 4, 204, -1))  # newest first, the oldest 5 gone
    assert [a.status for a in webhook_log.recent(bob_app)] == [500]


# --- a real server -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hooked():
    server = TabcastProcess(extra_env={"TABCAST_WEBHOOKS_ALLOW_PRIVATE": "1"}).start()
    yield server
    server.stop()


def post_form(owner: DashboardSession, path: str, fields: dict, form_page: str | None = None) -> str:
    """POST a dashboard form as the browser does (token from the page that shows the form),
    follow the redirect, return the HTML."""
    page = owner.get(form_page or path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}, doseq=True).encode()
    request = urllib.request.Request(owner.server.http + path, data=data, method="POST",
                                     headers={"Referer": owner.server.http + path})
    with owner.opener.open(request, timeout=15) as response:
        return response.read().decode()


def attempts_shown(html: str) -> list[tuple[str, str, str]]:
    """(events, status, result text) of each row of the attempts table, newest first."""
    rows = re.findall(r'<tr class="is-(?:ok|failed)" data-status="(\d*)">\s*<td[^>]*>[^<]*</td>\s*'
                      r'<td class="mono">([\w,]+)[^\n]*</td>\s*<td>([^<]*)</td>', html)
    return [(events, status, result) for status, events, result in rows]


def test_only_the_selected_events_reach_the_webhook_url(hooked, receiver):
    app = hooked.create_app("hooks", client_events=True)
    owner = DashboardSession.owner_of(hooked, app["app_id"], "hooks-owner@example.com")
    settings_url = f"/dashboard/apps/{app['app_id']}/settings/"
    page = post_form(owner, settings_url, {
        "name": "hooks", "client_events": "on", "max_message_bytes": "10240", "allowed_origins": "",
        "webhook_url": receiver.url, "webhook_events": ["channel_occupied", "client_event"]})
    assert "Settings saved" in page

    backend = python_backend(app)
    with connect(f"{hooked.ws}/app/{app['key']}?protocol=7") as ws:
        socket_id = json.loads(json.loads(ws.recv(timeout=5))["data"])["socket_id"]
        channel_data = json.dumps({"user_id": "7", "user_info": {}})
        auth = signatures.sign(app["secret"], signatures.channel_auth_message(socket_id, "presence-room", channel_data))
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {
            "channel": "presence-room", "auth": f"{app['key']}:{auth}", "channel_data": channel_data}}))
        assert json.loads(ws.recv(timeout=5))["event"] == "pusher_internal:subscription_succeeded"
        # member_added is queued right after channel_occupied: had it not been filtered, it
        # would arrive long before the marker below.
        ws.send(json.dumps({"event": "client-wave", "channel": "presence-room", "data": {"hi": 1}}))
        ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}))
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "marker"}}))
        assert json.loads(ws.recv(timeout=5))["event"] == "pusher_internal:subscription_succeeded"

        received = []
        while not received or received[-1] != {"name": "channel_occupied", "channel": "marker"}:
            headers, body, event = receiver.next_event()
            assert backend.validate_webhook(headers["X-Pusher-Key"], headers["X-Pusher-Signature"], body.decode())
            received.append(event)
    names = sorted(event["name"] for event in received)
    assert names == ["channel_occupied", "channel_occupied", "client_event"], received
    assert {"name": "channel_occupied", "channel": "presence-room"} in received

    # The server logged each delivery in the database; the Settings page lists them with their status.
    def listed():
        shown = attempts_shown(owner.get(settings_url))
        return shown if len(shown) >= 3 else None
    shown = wait_until(listed, 10, interval=0.2, what="three attempts listed")
    assert sorted(events for events, _, _ in shown) == ["channel_occupied", "channel_occupied", "client_event"]
    assert all(status == "200" and result == "HTTP 200" for _, status, result in shown), shown


def test_the_test_button_sends_a_signed_webhook_and_lists_its_status(hooked, receiver):
    app = hooked.create_app("test-button", webhook_url=receiver.url)
    owner = DashboardSession.owner_of(hooked, app["app_id"], "button-owner@example.com")
    settings_url = f"/dashboard/apps/{app['app_id']}/settings/"
    test_url = f"/dashboard/apps/{app['app_id']}/settings/webhook-test/"
    assert attempts_shown(owner.get(settings_url)) == []

    page = post_form(owner, test_url, {}, form_page=settings_url)
    headers, body, event = receiver.next_event()
    assert headers["X-Pusher-Key"] == app["key"] and headers["Content-Type"] == "application/json"
    validated = python_backend(app).validate_webhook(headers["X-Pusher-Key"], headers["X-Pusher-Signature"],
                                                     body.decode())
    assert validated is not None and validated["events"] == [event]
    assert event == {"name": "channel_occupied", "channel": "tabcast-test-webhook"}
    assert "Test webhook delivered: HTTP 200" in page
    assert attempts_shown(page) == [("channel_occupied", "200", "HTTP 200")]
    assert '<span class="badge badge--plain">test</span>' in page

    receiver.status = 503  # the customer's endpoint is down: the page says so
    page = post_form(owner, test_url, {}, form_page=settings_url)
    receiver.next_event()
    assert "answered HTTP 503" in page
    assert attempts_shown(page) == [("channel_occupied", "503", "HTTP 503"), ("channel_occupied", "200", "HTTP 200")]
