"""The management commands keep working next to the dashboard."""

import json
import os
import subprocess
import uuid
from io import StringIO
from urllib.parse import urlparse

import pytest
from django.core.management import call_command
from django.test import Client

from tenants import services
from tenants.models import App
from tests.support.processes import PYTHON, ROOT, wait_until

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_demo_creates_a_user_who_can_log_in_and_see_the_demo_app():
    output = run("seed_demo", "--base-url", "http://127.0.0.1:9000")
    assert "http://127.0.0.1:9000/dashboard/" in output
    password = output.split("login demo@tabcast.local / ")[1].split(")")[0]
    client = Client()
    assert client.login(username="demo@tabcast.local", password=password)
    assert "Demo app" in client.get("/dashboard/").content.decode()
    run("seed_demo")  # idempotent
    assert App.objects.filter(name="Demo app").count() == 1


def test_create_and_update_app():
    created = json.loads(run("create_app", "cli", "--json"))
    run("update_app", str(created["app_id"]), "allowed_origins=https://a.example\\nhttps://b.example")
    info = services.load_app(app_id=created["app_id"])
    assert info.allowed_origins == ("https://a.example", "https://b.example")


POSTGRES_URL = os.environ.get("TABCAST_TEST_POSTGRES_URL", "postgres://127.0.0.1:5432/test")

# "Another process" making the operator tenant: it inserts, says so, and commits only when told.
MAKER = """
import sys
import django
django.setup()
from django.db import transaction
from tenants.models import Tenant
from tenants.services import OPERATOR_TENANT
with transaction.atomic():
    print(Tenant.objects.create(name=OPERATOR_TENANT, is_operator=True).id, flush=True)
    sys.stdin.readline()
print("committed", flush=True)
"""


@pytest.fixture
def postgres_env(tmp_path):
    """Environment for manage.py on a throwaway, migrated PostgreSQL database (bin/test starts it)."""
    import psycopg

    name = f"tabcast_race_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (set TABCAST_TEST_POSTGRES_URL): {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    url = urlparse(POSTGRES_URL)._replace(path=f"/{name}").geturl()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update({"DATABASE_URL": url, "TABCAST_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "service.settings"})
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=180)
    try:
        yield env, url
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def test_operator_apps_share_one_tenant_even_when_processes_race_to_make_it(postgres_env):
    """Every server process makes the dashboard's system app at start, so two processes can both
    find no operator tenant and both try to make one: the loser must use the winner's. A real race
    between two processes: the maker has inserted (not committed) when create_app looks, so it
    finds none and its own insert waits on the unique index; then the maker commits."""
    import psycopg

    env, url = postgres_env
    maker = subprocess.Popen([PYTHON, "-c", MAKER], cwd=ROOT, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    creator = None
    try:
        winner = int(maker.stdout.readline())  # inserted, transaction still open
        creator = subprocess.Popen([PYTHON, "manage.py", "create_app", "second", "--json"], cwd=ROOT, env=env,
                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with psycopg.connect(url, autocommit=True) as watcher:
            # The positive signal: create_app's insert is blocked behind the maker's open transaction
            # (so it looked before the maker committed, and will collide).
            wait_until(lambda: watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO \"tenants_tenant\"%%'").fetchone()[0] == 1,
                60, what="create_app to wait on the maker's uncommitted tenant")
        maker.stdin.write("commit\n")
        maker.stdin.flush()
        assert maker.stdout.readline().strip() == "committed"
        out, err = creator.communicate(timeout=60)
        assert creator.returncode == 0, err
        second = json.loads(out)
        with psycopg.connect(url) as db:
            tenants = db.execute("SELECT id FROM tenants_tenant WHERE is_operator").fetchall()
            app_tenant = db.execute("SELECT tenant_id FROM tenants_app WHERE id = %s", [second["app_id"]]).fetchone()[0]
        assert tenants == [(winner,)] and app_tenant == winner
    finally:
        for proc in (maker, creator):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
