"""App pages: create, credentials, secret reveal and rotation, settings, disable, delete."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenants import services
from tenants.models import App

pytestmark = pytest.mark.django_db


def test_create_app_then_land_on_its_getting_started_page(alice, alice_client):
    response = alice_client.post(reverse("tenants:app_new"), {"name": "Chat"})
    app = App.objects.get()
    assert app.tenant == services.tenant_of(alice)
    assert (app.name, app.enabled) == ("Chat", True)
    assert response["Location"] == reverse("tenants:app_detail", args=[app.id])


def test_create_app_requires_a_name(alice_client):
    response = alice_client.post(reverse("tenants:app_new"), {"name": ""})
    assert response.status_code == 200 and response.context["form"].errors["name"]
    assert not App.objects.exists()


def test_detail_shows_id_and_key_but_never_the_secret(alice_client, alice_app):
    page = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    assert str(alice_app.id) in page and alice_app.key in page
    assert alice_app.secret not in page
    assert "YOUR_APP_SECRET" in page


def test_reveal_is_an_explicit_post_that_is_not_cached(alice_client, alice_app):
    url = reverse("tenants:app_reveal", args=[alice_app.id])
    assert alice_client.get(url).status_code == 405
    response = alice_client.post(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-app-secret>{alice_app.secret}<' in page
    assert f"curl -u {alice_app.key}:{alice_app.secret} " in page  # the snippets are filled in too
    assert "no-store" in response["Cache-Control"]


def test_rotate_keeps_the_old_secret_valid_during_the_grace_period_only(alice_client, alice_app):
    old = alice_app.secret
    response = alice_client.post(reverse("tenants:app_rotate", args=[alice_app.id]))
    assert response.status_code == 302
    alice_app.refresh_from_db()
    assert alice_app.secret != old and alice_app.previous_secret == old

    info = services.load_app(app_id=alice_app.id)
    assert set(info.valid_secrets()) == {alice_app.secret, old}
    detail = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    assert "The previous secret still works until" in detail
    assert old not in detail and alice_app.secret not in detail

    # The grace period ends: move its end into the past instead of waiting.
    App.objects.filter(id=alice_app.id).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.load_app(app_id=alice_app.id).valid_secrets() == (alice_app.secret,)
    detail = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    assert "The previous secret still works until" not in detail


def test_grace_period_length_comes_from_settings(alice_client, alice_app, settings):
    settings.TABCAST = {**settings.TABCAST, "SECRET_GRACE_SECONDS": 3600}
    before = timezone.now()
    alice_client.post(reverse("tenants:app_rotate", args=[alice_app.id]))
    alice_app.refresh_from_db()
    assert timedelta(minutes=59) < alice_app.previous_secret_expires_at - before <= timedelta(hours=1, seconds=5)


def test_revoking_the_previous_secret_ends_the_grace_at_once(alice_client, alice_app):
    old = alice_app.secret
    alice_client.post(reverse("tenants:app_rotate", args=[alice_app.id]))
    alice_client.post(reverse("tenants:app_expire_previous", args=[alice_app.id]))
    info = services.load_app(app_id=alice_app.id)
    assert old not in info.valid_secrets() and len(info.valid_secrets()) == 1


def valid_settings(**overrides):
    return {"name": "Renamed", "max_message_bytes": 20480, "allowed_origins": "", **overrides}


def test_settings_save_every_field(alice_client, alice_app):
    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]), valid_settings(
        client_events="on", subscription_count="on",
        allowed_origins="https://App.Example.com/\n\n*.example.org\nhttp://localhost:3000\nhttps://app.example.com"))
    assert response.status_code == 302
    alice_app.refresh_from_db()
    assert alice_app.name == "Renamed"
    assert alice_app.client_events and alice_app.subscription_count
    assert alice_app.max_message_bytes == 20480
    # Normalised and de-duplicated, in the order given.
    assert alice_app.origins == ("https://app.example.com", "*.example.org", "http://localhost:3000")
    info = services.load_app(app_id=alice_app.id)
    assert info.origin_allowed("https://app.example.com") and not info.origin_allowed("https://evil.example")


def test_unchecking_a_feature_turns_it_off(alice_client, alice_app):
    App.objects.filter(id=alice_app.id).update(client_events=True)
    alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]), valid_settings())
    alice_app.refresh_from_db()
    assert not alice_app.client_events


@pytest.mark.parametrize("origins", [
    "example.com",                       # no scheme
    "ftp://example.com",                 # not http(s)
    "https://example.com/path",          # a URL, not an origin
    "https://user@example.com",
    "https://exa mple.com",
    "https://example.com:99999",
    "https://*.example.com",             # wildcards are written *.example.com
    "*example.com",
    "https://ok.example\nnot an origin",  # one bad line is enough
])
def test_settings_refuse_bad_origin_lines(alice_client, alice_app, origins):
    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]),
                                 valid_settings(allowed_origins=origins))
    assert response.status_code == 200
    errors = response.context["form"].errors["allowed_origins"]
    assert errors and errors[0].startswith("Line ")
    alice_app.refresh_from_db()
    assert alice_app.allowed_origins == "" and alice_app.name == "Alice production"


@pytest.mark.parametrize("size", [0, 1023, 512 * 1024 + 1, -5, "lots"])
def test_settings_refuse_message_sizes_out_of_range(alice_client, alice_app, size):
    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]),
                                 valid_settings(max_message_bytes=size))
    assert response.status_code == 200 and response.context["form"].errors["max_message_bytes"]
    alice_app.refresh_from_db()
    assert alice_app.max_message_bytes == 10 * 1024


@pytest.mark.parametrize("size", [1024, 512 * 1024])
def test_settings_accept_the_ends_of_the_size_range(alice_client, alice_app, size):
    alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]), valid_settings(max_message_bytes=size))
    alice_app.refresh_from_db()
    assert alice_app.max_message_bytes == size


def test_disable_and_enable(alice_client, alice_app):
    url = reverse("tenants:app_status", args=[alice_app.id])
    alice_client.post(url, {"enabled": "0"})
    assert services.load_app(app_id=alice_app.id).enabled is False
    assert "This app is disabled" in alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    alice_client.post(url, {"enabled": "1"})
    assert services.load_app(app_id=alice_app.id).enabled is True


def test_delete_needs_the_app_name_typed(alice_client, alice_app):
    url = reverse("tenants:app_delete", args=[alice_app.id])
    assert alice_client.get(url).status_code == 200
    response = alice_client.post(url, {"confirm_name": "something else"})
    assert response.status_code == 200 and response.context["form"].errors["confirm_name"]
    assert App.objects.filter(id=alice_app.id).exists()

    response = alice_client.post(url, {"confirm_name": "Alice production"})
    assert response["Location"] == reverse("tenants:app_list")
    assert not App.objects.filter(id=alice_app.id).exists()
    assert services.load_app(app_id=alice_app.id) is None


def test_getting_started_is_filled_with_the_apps_values_and_the_request_address(alice_client, alice_app, settings):
    settings.ALLOWED_HOSTS = ["rt.example.com"]  # a deployment answering on its public host name
    response = alice_client.post(reverse("tenants:app_reveal", args=[alice_app.id]),
                                 HTTP_HOST="rt.example.com:8443", secure=True)
    snippets = response.context["snippets"]
    app = alice_app
    assert snippets["script_tag"] == '<script src="https://rt.example.com:8443/sdk/v1/tabcast.js"></script>'
    assert snippets["script_tag"] in snippets["browser"]
    assert f'new Tabcast("{app.key}", {{ host: "rt.example.com:8443", forceTLS: true }})' in snippets["browser"]
    assert snippets["curl"] == (
        f"curl -u {app.key}:{app.secret} -H 'Content-Type: application/json' "
        """-d '{"channel":"my-channel","event":"my-event","data":{"hello":"world"}}' """
        "https://rt.example.com:8443/publish")
    assert (f'client = pusher.Pusher(\n    app_id="{app.id}",\n    key="{app.key}",\n    secret="{app.secret}",\n'
            '    host="rt.example.com",\n    port=8443,\n    ssl=True,\n)') in snippets["python"]


def test_getting_started_on_plain_http_default_port(alice_client, alice_app):
    response = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id]), HTTP_HOST="localhost")
    snippets = response.context["snippets"]
    assert snippets["script_tag"] == '<script src="http://localhost/sdk/v1/tabcast.js"></script>'
    assert "port=80,\n    ssl=False," in snippets["python"]
    assert snippets["curl"].endswith(" http://localhost/publish")


def test_metering_links_appear_only_when_billing_defines_them(alice_client, alice_app):
    from django.urls import NoReverseMatch

    page = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    for name, label in [("billing:usage", "Usage"), ("live:console", "Debug console")]:
        try:
            url = reverse(name, args=[alice_app.id])
        except NoReverseMatch:
            assert f">{label}</a>" not in page
        else:
            assert f'href="{url}">{label}</a>' in page


def test_a_new_user_sees_an_empty_state(make_user):
    client = Client()
    client.force_login(make_user("fresh@example.com"))
    page = client.get(reverse("tenants:app_list")).content.decode()
    assert "Create your first app" in page


def test_credential_actions_are_audited_without_ever_logging_a_secret(alice, alice_client, alice_app, caplog):
    old = alice_app.secret
    with caplog.at_level("DEBUG"):
        alice_client.post(reverse("tenants:app_reveal", args=[alice_app.id]))
        alice_client.post(reverse("tenants:app_rotate", args=[alice_app.id]))
    alice_app.refresh_from_db()
    audit = [r.getMessage() for r in caplog.records if r.name == "tenants.audit"]
    assert audit == [f"secret of app {alice_app.id} revealed to user {alice.pk}",
                     f"secret of app {alice_app.id} rotated by user {alice.pk}"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert old not in logged and alice_app.secret not in logged
