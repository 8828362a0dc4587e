"""Billing fixtures: a fake Stripe API the real SDK talks to, teams with apps, logged-in clients."""

import pytest
import stripe
from django.test import Client

from tenants import services

from .fake_stripe import serve

WEBHOOK_SECRET = "whsec_test_tabcast"


@pytest.fixture(autouse=True)
def no_stripe_telemetry(monkeypatch):
    """The SDK would otherwise write ~/.config/stripe/telemetry_id and send a telemetry header."""
    monkeypatch.setattr(stripe, "enable_telemetry", False)


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fake_stripe(settings):
    """A recording fake Stripe API, configured as billing's Stripe account for the test."""
    fake, server = serve()
    settings.STRIPE_SECRET_KEY = "sk_test_tabcast"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    settings.STRIPE_METER_EVENT_NAME = "tabcast_peak_connections"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def unconfigured(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""


@pytest.fixture
def alice(db):
    return services.sign_up("alice@example.com", "correct horse battery", "Alice's team")


@pytest.fixture
def bob(db):
    return services.sign_up("bob@example.com", "correct horse battery", "Bob's team")


@pytest.fixture
def alice_tenant(alice):
    return services.tenant_of(alice)


@pytest.fixture
def bob_tenant(bob):
    return services.tenant_of(bob)


@pytest.fixture
def alice_client(alice):
    client = Client()
    client.force_login(alice)
    return client
