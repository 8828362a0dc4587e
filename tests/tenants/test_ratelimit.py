"""The public auth endpoints answer 429 to one address that keeps trying."""

import pytest
from django.test import Client
from django.urls import reverse

from tenants.ratelimit import LIMITS

pytestmark = pytest.mark.django_db


def test_login_over_the_limit_gets_429_with_a_clear_message(alice):
    client = Client()
    limit, _ = LIMITS["login"]
    for _ in range(limit):
        response = client.post(reverse("tenants:login"), {"username": "alice@example.com", "password": "guess"})
        assert response.status_code == 200
    response = client.post(reverse("tenants:login"), {"username": "alice@example.com", "password": "guess"})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= LIMITS["login"][1]
    # Even the right password waits: that is the point of the limit.
    response = client.post(reverse("tenants:login"), {"username": "alice@example.com", "password": "right?"})
    assert response.status_code == 429


def test_other_addresses_and_page_loads_are_not_limited(alice):
    limit, _ = LIMITS["login"]
    for _ in range(limit + 1):
        Client(REMOTE_ADDR="10.0.0.1").post(reverse("tenants:login"), {"username": "a@b.c", "password": "x"})
    assert Client(REMOTE_ADDR="10.0.0.1").get(reverse("tenants:login")).status_code == 200
    response = Client(REMOTE_ADDR="10.0.0.2").post(reverse("tenants:login"), {"username": "a@b.c", "password": "x"})
    assert response.status_code == 200


@pytest.mark.parametrize(("scope", "url", "data"), [
    ("signup", "tenants:signup", {"email": "not-an-email", "password": "x"}),
    ("password_reset", "tenants:password_reset", {"email": "nobody@example.com"}),
])
def test_signup_and_password_reset_are_limited_too(scope, url, data):
    client = Client()
    limit, _ = LIMITS[scope]
    for _ in range(limit):
        assert client.post(reverse(url), data).status_code != 429
    assert client.post(reverse(url), data).status_code == 429
