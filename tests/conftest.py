"""Shared fixtures: real Tabcast servers, real Redis, real Pusher clients."""

import os

import pytest

from tests.support.clients import PusherJs
from tests.support.processes import RedisProcess, TabcastProcess, redis_reachable, remove_temp_dirs

pytest_plugins = ["tests.support.teams"]  # Alice's and Bob's teams, apps and clients


def pytest_sessionfinish(session, exitstatus):
    """Remove the var/redis/cluster dirs the servers of this run used (each xdist worker its own)."""
    remove_temp_dirs()


@pytest.fixture(scope="session")
def tabcast():
    """One embedded-mode server (SQLite, in-memory state) shared by the protocol tests."""
    server = TabcastProcess().start()
    yield server
    server.stop()


_app_pools: dict[int, list[dict]] = {}


def fresh_app(server) -> dict:
    """An unused app (client events on) on ``server``, from a pool made 25 at a time."""
    pool = _app_pools.setdefault(server.port, [])
    if not pool:
        pool.extend(server.create_apps(25, "test", client_events=True))
    return pool.pop()


@pytest.fixture
def app(tabcast):
    """A fresh app on the shared server, so tests never see each other's channels."""
    return fresh_app(tabcast)


@pytest.fixture(scope="session")
def redis_url():
    """REDIS_URL if set (it must answer), else a redis-server started for this session."""
    url = os.environ.get("REDIS_URL")
    if url:
        if not redis_reachable(url):
            pytest.fail(f"REDIS_URL={url} is set but Redis does not answer")
        yield url
        return
    server = RedisProcess().start()
    yield server.url
    server.stop()


@pytest.fixture
def pusherjs():
    """Factory of pusher-js clients, all closed at the end of the test."""
    clients = []

    def make(app, **options) -> PusherJs:
        client = PusherJs(app, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
