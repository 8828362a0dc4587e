"""Fixtures for dashboard tests: a clean rate-limit cache (teams come from tests/support/teams.py)."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def clean_cache():
    """Rate-limit counters live in the cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()
