"""Per-app channel history settings (docs/recovery.md): defaults, the Settings form within the
plan's bounds (Free here: 100 messages, 120 s), load_app and the update_app command."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tenants import services
from tenants.models import HISTORY_SIZE_CEILING, HISTORY_TTL_CEILING

pytestmark = pytest.mark.django_db


def settings_form(**overrides):
    return {"name": "Shop", "max_message_bytes": 10240, "allowed_origins": "", **overrides}


def test_a_new_app_keeps_100_messages_for_120_seconds(alice_app):
    assert (alice_app.history_size, alice_app.history_ttl) == (100, 120)
    info = services.load_app(app_id=alice_app.id)
    assert (info.history_size, info.history_ttl) == (100, 120)


def test_settings_page_shows_the_fields_with_the_plans_bounds(alice_client, alice_app):
    page = alice_client.get(reverse("tenants:app_settings", args=[alice_app.id])).content.decode()
    assert 'name="history_size" value="100"' in page and 'name="history_ttl" value="120"' in page
    assert "Your plan allows up to 100." in page and "Your plan allows up to 120 seconds." in page
    assert "0 turns history, positions and resume off" in page


def test_settings_save_history_within_the_plan(alice_client, alice_app):
    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]),
                                 settings_form(history_size=40, history_ttl=60))
    assert response.status_code == 302
    alice_app.refresh_from_db()
    assert (alice_app.history_size, alice_app.history_ttl) == (40, 60)
    info = services.load_app(app_id=alice_app.id)
    assert (info.history_size, info.history_ttl) == (40, 60)
    detail = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    assert "40 messages per channel, kept 60 s after the last publish" in detail


def test_zero_turns_history_off(alice_client, alice_app):
    alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]), settings_form(history_size=0))
    assert services.load_app(app_id=alice_app.id).history_size == 0
    detail = alice_client.get(reverse("tenants:app_detail", args=[alice_app.id])).content.decode()
    assert "Off: no positions or resume" in detail


@pytest.mark.parametrize("field,value,message", [
    ("history_size", 101, "Your plan allows at most 100 here."),
    ("history_ttl", 121, "Your plan allows at most 120 here."),
    ("history_size", -1, "greater than or equal to 0"),
    ("history_ttl", 0, "greater than or equal to 1"),
    ("history_size", "lots", "Enter a whole number."),
])
def test_settings_refuse_history_outside_the_plan(alice_client, alice_app, field, value, message):
    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]),
                                 settings_form(**{field: value}))
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    alice_app.refresh_from_db()
    assert (alice_app.history_size, alice_app.history_ttl) == (100, 120)


def test_a_form_without_the_history_fields_keeps_them(alice_client, alice_app):
    alice_app.history_size, alice_app.history_ttl = 7, 30
    alice_app.save()
    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]), settings_form(name="New"))
    assert response.status_code == 302
    alice_app.refresh_from_db()
    assert (alice_app.name, alice_app.history_size, alice_app.history_ttl) == ("New", 7, 30)


def test_operator_apps_are_bounded_only_by_the_ceilings(db):
    app = services.create_app("operator's")
    assert services.history_bounds(app.tenant_id) == (HISTORY_SIZE_CEILING, HISTORY_TTL_CEILING)
    app.history_size, app.history_ttl = HISTORY_SIZE_CEILING, HISTORY_TTL_CEILING
    app.save()
    info = services.load_app(app_id=app.id)
    assert (info.history_size, info.history_ttl) == (HISTORY_SIZE_CEILING, HISTORY_TTL_CEILING)


def _update(app_id, *changes) -> dict:
    out = StringIO()
    call_command("update_app", str(app_id), *changes, stdout=out)
    return json.loads(out.getvalue())


def test_update_app_sets_history_within_the_bounds(alice_app):
    answer = _update(alice_app.id, "history_size=0", "history_ttl=30")
    assert (answer["history_size"], answer["history_ttl"]) == (0, 30)
    assert services.load_app(app_id=alice_app.id).history_size == 0
    with pytest.raises(CommandError, match="history_size must be from 0 to 100"):
        _update(alice_app.id, "history_size=500")
    with pytest.raises(CommandError, match="history_ttl must be from 1 to 120"):
        _update(alice_app.id, "history_ttl=0")
    alice_app.refresh_from_db()
    assert (alice_app.history_size, alice_app.history_ttl) == (0, 30)
