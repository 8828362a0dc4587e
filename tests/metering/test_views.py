"""The usage and console pages, the test-event form and the dashboard's channel auth."""

import pytest
from django.urls import reverse

from live.dashboard_app import dashboard_app
from live.models import DashboardApp
from service.realtime import signatures

SOCKET_ID = "123.456"


@pytest.mark.parametrize("name", ["billing:overview", "live:console"])
def test_pages_need_login(client, alice_app, name):
    response = client.get(reverse(name, args=[alice_app.id]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("tenants:login"))


@pytest.mark.parametrize("name", ["billing:overview", "live:console"])
def test_pages_of_another_teams_app_are_404(alice_client, bob_app, name):
    assert alice_client.get(reverse(name, args=[bob_app.id])).status_code == 404


def test_overview_shows_live_counts_history_and_savings(alice_client, alice_app):
    response = alice_client.get(reverse("billing:overview", args=[alice_app.id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"private-metrics-{alice_app.id}" in page
    assert dashboard_app().key in page
    assert "/sdk/v1/tabcast.js" in page and "billing/vendor/uplot/uPlot.iife.min.js" in page
    for title in ("Connections saved", "Frames saved", "Bandwidth saved", "Versus HTTP polling"):
        assert title in page
    assert "Polling once a second from every tab" in page
    assert len(response.context["initial_history"]["points"]) == 24


def test_console_shows_stream_and_test_event_form(alice_client, alice_app):
    response = alice_client.get(reverse("live:console", args=[alice_app.id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"private-debug-{alice_app.id}" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert reverse("live:publish_test_event", args=[alice_app.id]) in page


def test_dashboard_app_is_created_once(db):
    first, second = dashboard_app(), dashboard_app()
    assert first.id == second.id
    assert DashboardApp.objects.count() == 1
    assert first.name == "Tabcast dashboard"


def _auth(client, channel, socket_id=SOCKET_ID):
    return client.post(reverse("live:realtime_auth"), {"socket_id": socket_id, "channel_name": channel})


@pytest.mark.parametrize("prefix", ["private-metrics-", "private-debug-"])
def test_auth_signs_dashboard_channels_of_own_apps(alice_client, alice_app, prefix):
    channel = f"{prefix}{alice_app.id}"
    response = _auth(alice_client, channel)
    assert response.status_code == 200
    system = dashboard_app()
    expected = signatures.sign(system.secret, f"{SOCKET_ID}:{channel}")
    assert response.json() == {"auth": f"{system.key}:{expected}"}


def test_auth_refuses_another_teams_app(alice_client, bob_app):
    assert _auth(alice_client, f"private-metrics-{bob_app.id}").status_code == 403
    assert _auth(alice_client, f"private-debug-{bob_app.id}").status_code == 403


@pytest.mark.parametrize("template", [
    "private-orders", "presence-metrics-{id}", "private-metrics-", "private-metrics-{id}x",
    "private-metrics-{id}\n", "private-metrics-\u0661",  # only ASCII digits, nothing after them
])
def test_auth_refuses_other_channels(alice_client, alice_app, template):
    assert _auth(alice_client, template.format(id=alice_app.id)).status_code == 403


@pytest.mark.parametrize("socket_id", ["1.2:x", "1.2\n", "", "12"])
def test_auth_refuses_bad_socket_id(alice_client, alice_app, socket_id):
    assert _auth(alice_client, f"private-metrics-{alice_app.id}", socket_id=socket_id).status_code == 400


def test_auth_needs_login(client, alice_app):
    assert _auth(client, f"private-metrics-{alice_app.id}").status_code == 403


def test_auth_needs_csrf_token(alice_csrf_client, alice_app):
    assert _auth(alice_csrf_client, f"private-metrics-{alice_app.id}").status_code == 403


def _publish(client, app, **fields):
    data = {"channel": "orders", "event": "created", "data": '{"id": 1}', **fields}
    return client.post(reverse("live:publish_test_event", args=[app.id]), data, HTTP_ACCEPT="application/json")


def test_publish_test_event_needs_csrf_token(alice_csrf_client, alice_app):
    assert _publish(alice_csrf_client, alice_app).status_code == 403


def test_publish_test_event_of_another_teams_app_is_404(alice_client, bob_app):
    assert _publish(alice_client, bob_app).status_code == 404


def test_publish_test_event_only_by_post(alice_client, alice_app):
    url = reverse("live:publish_test_event", args=[alice_app.id])
    assert alice_client.get(url).status_code == 405


@pytest.mark.parametrize("fields, field", [
    ({"channel": "bad channel!"}, "channel"),
    ({"event": "pusher:subscribe"}, "event"),
    ({"data": "x" * (10 * 1024 + 1)}, "data"),
])
def test_publish_test_event_validates(alice_client, alice_app, fields, field):
    response = _publish(alice_client, alice_app, **fields)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_publish_test_event_publishes(alice_client, alice_app):
    response = _publish(alice_client, alice_app)
    assert response.status_code == 200
    assert response.json() == {"published": {"channel": "orders", "event": "created"}}


def test_publish_test_event_without_js_redirects_back(alice_client, alice_app):
    response = alice_client.post(reverse("live:publish_test_event", args=[alice_app.id]),
                                 {"channel": "orders", "event": "created", "data": "{}"})
    assert response.status_code == 302
    assert response.url == reverse("live:console", args=[alice_app.id])


@pytest.mark.parametrize("page", ["overview", "console"])
def test_pages_answer_without_the_trailing_slash(alice_client, alice_app, page):
    response = alice_client.get(f"/dashboard/apps/{alice_app.id}/{page}")
    assert response.status_code == 301 and response.url == f"/dashboard/apps/{alice_app.id}/{page}/"


def test_publish_test_event_without_js_shows_errors_on_the_page(alice_client, alice_app):
    response = alice_client.post(reverse("live:publish_test_event", args=[alice_app.id]),
                                 {"channel": "bad channel!", "event": "created", "data": "{}"})
    assert response.status_code == 400
    assert "Channel name may contain only" in response.content.decode()
    assert "at most 50 a second are shown" in response.content.decode()
