"""The management commands keep working next to the dashboard."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from tenants import services
from tenants.models import App, Tenant

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


def test_operator_apps_share_one_tenant_even_when_processes_race_to_make_it(monkeypatch):
    first = services.create_app("first")
    # Every server process makes the dashboard's system app at start, so two processes can
    # both find no operator tenant and both try to make one: the loser must use the winner's.
    found_none = Tenant.objects.none()
    monkeypatch.setattr(Tenant.objects, "filter", lambda **kw: found_none if kw == {"is_operator": True}
                        else Tenant.objects.get_queryset().filter(**kw))
    second = services.create_app("second")
    monkeypatch.undo()
    assert second.tenant_id == first.tenant_id
    assert Tenant.objects.filter(is_operator=True).count() == 1
    assert json.loads(run("create_app", "third", "--json"))["app_id"] > second.id  # the command still works
