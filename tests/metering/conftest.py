"""Fixtures for the metering pages and API: two teams with an app each, logged-in clients."""

import pytest
from django.test import Client

from tenants import services


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db):
    return services.sign_up("alice@example.com", "correct horse battery", "Alice's team")


@pytest.fixture
def bob(db):
    return services.sign_up("bob@example.com", "correct horse battery", "Bob's team")


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
