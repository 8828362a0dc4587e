"""docker/: the compose file names what Tabcast needs, and the same topology runs from Debian packages.

There is no Docker engine in CI, so the files are checked for what the service relies on, and
the topology itself (Postgres + Redis + two Tabcast processes, migrated by the entrypoint) is
started from local binaries.
"""

import os
import re
import secrets
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.support.clients import python_backend
from tests.support.processes import PYTHON, ROOT, RedisProcess, TabcastProcess

from .conftest import on

DOCKER = ROOT / "docker"
POSTGRES_URL = os.environ.get("TABCAST_TEST_POSTGRES_URL", "postgres://127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def tabcast_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if s.get("image", "").startswith("tabcast")}


def test_compose_runs_tabcast_on_redis_and_postgres(compose):
    services = compose["services"]
    tabcasts = tabcast_services(compose)
    assert len(tabcasts) >= 2, "scale-out needs at least two Tabcast processes"
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    postgres_env = services["postgres"]["environment"]
    for name, service in tabcasts.items():
        assert (ROOT / service["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        assert (DOCKER / service["build"]["context"]).resolve() == ROOT
        env = service["environment"]
        redis, database = urlparse(env["REDIS_URL"]), urlparse(env["DATABASE_URL"].replace("${", "").replace("}", ""))
        assert redis.scheme == "redis" and redis.hostname == "redis"
        assert database.scheme == "postgres" and database.hostname == "postgres"
        assert database.path == f"/{postgres_env['POSTGRES_DB']}" and database.username == postgres_env["POSTGRES_USER"]
        assert env["TABCAST_SECRET_KEY"].startswith("${TABCAST_SECRET_KEY:?"), "no default secret may ship"
        for needed in ("redis", "postgres"):
            assert service["depends_on"][needed]["condition"] == "service_healthy", (name, needed)
        assert "/healthz" in " ".join(service["healthcheck"]["test"])


def test_every_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_the_load_balancer_fronts_every_tabcast_and_passes_websockets(compose):
    config = (DOCKER / "nginx.conf").read_text()
    upstream = set(re.findall(r"server (\S+):8000;", config))
    assert upstream == set(tabcast_services(compose))
    assert "proxy_set_header Upgrade $http_upgrade;" in config
    assert compose["services"]["nginx"]["volumes"] == ["./nginx.conf:/etc/nginx/conf.d/default.conf:ro"]


def test_dockerfile_installs_requirements_and_serves_on_all_interfaces():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert 'ENTRYPOINT ["docker/entrypoint.sh"]' in dockerfile
    assert 'CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    assert re.search(r"^USER tabcast$", dockerfile, re.M), "the server must not run as root"
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists() or (ROOT / "sdk_js" / path).exists(), path


@pytest.fixture(scope="module")
def database_url():
    """A throwaway database on the local PostgreSQL (dropped afterwards)."""
    import psycopg

    name = f"tabcast_scaleout_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (set TABCAST_TEST_POSTGRES_URL): {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    yield urlparse(POSTGRES_URL)._replace(path=f"/{name}").geturl()
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def test_entrypoint_migrates_then_runs_the_command(database_url, tmp_path):
    # In the image `python` is the one with the requirements; here it is this virtualenv's.
    env = {**os.environ, "DATABASE_URL": database_url, "TABCAST_VAR_DIR": str(tmp_path),
           "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("REDIS_URL", None)
    result = subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), PYTHON, "-c", "print('then the command')"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("then the command")
    check = subprocess.run([PYTHON, "manage.py", "migrate", "--check"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, "the entrypoint left migrations unapplied"


@pytest.mark.redis
def test_the_compose_topology_from_debian_packages(database_url, pusherjs):
    redis = RedisProcess().start()
    shared = {"TABCAST_SECRET_KEY": secrets.token_urlsafe(32)}
    first = TabcastProcess(redis_url=redis.url, database_url=database_url, extra_env=shared)
    second = TabcastProcess(redis_url=redis.url, database_url=database_url, extra_env=shared)
    try:
        first.start()  # migrates (a no-op after the entrypoint test), as tabcast-1 does
        second.start(migrate=False)
        app = first.create_app("compose")
        listener = pusherjs(on(app, second)).connected()
        listener.subscribe("news")
        python_backend(app).trigger("news", "hello", {"via": "first"})
        assert listener.wait_for(type="event", channel="news", event="hello")["data"] == {"via": "first"}
        for server in (first, second):
            assert python_backend(on(app, server)).channels_info()["channels"] == {"news": {"subscription_count": 1}}
    finally:
        first.stop()
        second.stop()
        redis.stop()
