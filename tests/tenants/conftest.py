"""Fixtures for dashboard tests: fast password hashing, a clean rate-limit cache, users with teams."""

import pytest
from django.core.cache import cache
from django.test import Client

from tenants import services

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clean_cache():
    """Rate-limit counters live in the cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_user(db):
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
def alice_client(alice):
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def alice_app(alice):
    return services.create_app("Alice production", tenant=services.tenant_of(alice))


@pytest.fixture
def bob_app(bob):
    return services.create_app("Bob production", tenant=services.tenant_of(bob))
