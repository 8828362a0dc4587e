"""Every form is CSRF-protected: a POST without the token is refused, with it it works."""

import pytest
from django.test import Client
from django.urls import reverse

from tenants.models import App

from tests.support.teams import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_client(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


@pytest.mark.parametrize(("name", "data"), [
    ("tenants:app_new", {"name": "Forged"}),
    ("tenants:team", {"email": "forged@example.com"}),
    ("tenants:logout", {}),
])
def test_dashboard_forms_refuse_posts_without_a_token(csrf_client, name, data):
    assert csrf_client.post(reverse(name), data).status_code == 403


@pytest.mark.parametrize(("name", "data"), [
    ("tenants:app_settings", {"name": "Forged", "max_message_bytes": 2048}),
    ("tenants:app_reveal", {}),
    ("tenants:app_rotate", {}),
    ("tenants:app_status", {"enabled": "0"}),
    ("tenants:app_delete", {"confirm_name": "Alice production"}),
])
def test_app_actions_refuse_posts_without_a_token(csrf_client, alice_app, name, data):
    before = App.objects.values().get(id=alice_app.id)
    response = csrf_client.post(reverse(name, args=[alice_app.id]), data)
    assert response.status_code == 403
    assert alice_app.secret not in response.content.decode()
    assert App.objects.values().get(id=alice_app.id) == before


@pytest.mark.parametrize(("name", "data"), [
    ("tenants:login", {"username": "alice@example.com", "password": PASSWORD}),
    ("tenants:signup", {"email": "new@example.com", "password": PASSWORD}),
    ("tenants:password_reset", {"email": "alice@example.com"}),
])
def test_public_forms_refuse_posts_without_a_token(alice, name, data):
    assert Client(enforce_csrf_checks=True).post(reverse(name), data).status_code == 403


def test_a_form_posted_with_its_token_works(csrf_client, alice_app):
    url = reverse("tenants:app_settings", args=[alice_app.id])
    csrf_client.get(url)
    token = csrf_client.cookies["csrftoken"].value
    response = csrf_client.post(url, {"name": "Renamed", "max_message_bytes": 4096, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    alice_app.refresh_from_db()
    assert alice_app.name == "Renamed"
