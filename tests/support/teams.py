"""Shared Django-side fixtures: two teams (Alice's and Bob's), their apps, logged-in clients.

Registered for the whole suite in tests/conftest.py; each suite's conftest adds only what is
its own (a fake Stripe, a clean rate-limit cache, ...).
"""

import pytest
from django.test import Client

from tenants import services

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """Django-test speed: MD5 hashing instead of PBKDF2 (never outside tests)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db, fast_hashing):
    """Sign up a user (with their own team) the way the signup page does."""
    def make(email: str, team: str = ""):
        return services.sign_up(email, PASSWORD, team)
    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice@example.com", "Alice's team")


@pytest.fixture
def bob(make_user):
    return make_user("bob@example.com", "Bob's team")


@pytest.fixture
def alice_tenant(alice):
    return services.tenant_of(alice)


@pytest.fixture
def bob_tenant(bob):
    return services.tenant_of(bob)


@pytest.fixture
def alice_app(alice):
    return services.create_app("Alice production", tenant=services.tenant_of(alice))


@pytest.fixture
def bob_app(bob):
    return services.create_app("Bob production", tenant=services.tenant_of(bob))


@pytest.fixture
def alice_client(alice):
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def alice_csrf_client(alice):
    """A logged-in client that enforces CSRF, as a browser session would."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client
