"""Billing fixtures: a fake Stripe API the real SDK talks to, and no SDK telemetry (teams come from tests/support/teams.py)."""

import pytest
import stripe

from tests.support.processes import TabcastProcess, temp_dir

from .fake_stripe import serve

WEBHOOK_SECRET = "whsec_test_tabcast"


@pytest.fixture(autouse=True)
def no_stripe_telemetry(monkeypatch):
    """The SDK would otherwise write ~/.config/stripe/telemetry_id and send a telemetry header."""
    monkeypatch.setattr(stripe, "enable_telemetry", False)


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
def pair(redis_url):
    """Two server processes sharing one Redis and one database: a cluster of two."""
    var_dir = temp_dir("tabcast-billing-cluster-")  # removed at the end of the session
    a = TabcastProcess(redis_url=redis_url, var_dir=var_dir).start()
    b = TabcastProcess(redis_url=redis_url, var_dir=var_dir).start(migrate=False)
    yield a, b
    a.stop()
    b.stop()
