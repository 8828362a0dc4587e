"""Several Tabcast processes sharing one Redis and one database, as behind a load balancer."""

import base64
import json
import urllib.error
import urllib.request
from email.message import Message

import pytest

from tests.support.processes import RedisProcess, TabcastProcess, temp_dir

NODE_TTL = 3  # seconds: dead processes drop out fast, heartbeats (every second) heal fast


class Cluster:
    """Tabcast processes on one Redis and one database (SQLite in a shared var dir by default)."""

    def __init__(self, redis_url: str, database_url: str | None = None):
        self.redis_url = redis_url
        self.database_url = database_url
        self.var_dir = temp_dir("tabcast-cluster-")
        self.processes: list[TabcastProcess] = []

    def start(self, workers: int = 1, **extra_env) -> TabcastProcess:
        process = TabcastProcess(redis_url=self.redis_url, database_url=self.database_url, var_dir=self.var_dir,
                                 workers=workers, extra_env={"TABCAST_NODE_TTL": str(NODE_TTL), **extra_env})
        self.processes.append(process.start(migrate=len(self.processes) == 0))
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def on(app: dict, server: TabcastProcess) -> dict:
    """The same app, reached through another process."""
    return {**app, "port": server.port}


def publish(app: dict, channel: str, event: str, data) -> tuple[int, dict, Message]:
    """POST /publish (key:secret) to the app's process; (status, JSON body, headers: case-insensitive)."""
    token = base64.b64encode(f"{app['key']}:{app['secret']}".encode()).decode()
    request = urllib.request.Request(
        f"http://{app['host']}:{app['port']}/publish", method="POST",
        data=json.dumps({"channel": channel, "event": event, "data": data}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


@pytest.fixture(scope="module")
def redis_server():
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(redis_server):
    """Two processes, A and B, on a Redis of their own."""
    cluster = Cluster(redis_server.url)
    cluster.a, cluster.b = cluster.start(), cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def app(cluster):
    """A fresh app; as returned it points at process A (``on(app, cluster.b)`` for B)."""
    return cluster.a.create_app("scaleout", client_events=True)


@pytest.fixture
def restartable():
    """Two server processes, A and B, on a Redis of their own that the test may stop, freeze,
    kill and restart on the same port (``.redis``)."""
    redis = RedisProcess().start()
    cluster = Cluster(redis.url)
    cluster.redis = redis
    cluster.a, cluster.b = cluster.start(), cluster.start()
    yield cluster
    cluster.stop()
    redis.stop()
