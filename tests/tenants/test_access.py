"""Who can reach what: anonymous users go to log in, and another tenant's app is always a 404."""

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

from tenants.models import App

pytestmark = pytest.mark.django_db

DASHBOARD_URLS = ["tenants:app_list", "tenants:app_new", "tenants:team", "tenants:password_change",
                  "tenants:password_change_done"]
# Login-required POST actions that take another object's id.
TEAM_ACTIONS = ["tenants:revoke_invitation", "tenants:remove_member"]
DASHBOARD_NAMESPACES = ("tenants", "billing", "live")


def per_app_routes(patterns=None, namespace=""):
    """Every dashboard route with an ``app_id`` in its path: "namespace:name"."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from per_app_routes(pattern.url_patterns, pattern.namespace or namespace)
        elif namespace in DASHBOARD_NAMESPACES and "app_id" in pattern.pattern.converters:
            yield f"{namespace}:{pattern.name}"

# Every per-app URL, with the method(s) it answers and a POST body that would change something.
APP_URLS = [
    ("tenants:app_detail", "get", {}),
    ("tenants:app_settings", "get", {}),
    ("tenants:app_settings", "post", {"name": "Hijacked", "max_message_bytes": 2048, "allowed_origins": "",
                                      "client_events": "on"}),
    ("tenants:app_reveal", "post", {}),
    ("tenants:app_rotate", "post", {}),
    ("tenants:app_expire_previous", "post", {}),
    ("tenants:app_status", "post", {"enabled": "0"}),
    ("tenants:app_delete", "get", {}),
    ("tenants:app_delete", "post", {"confirm_name": "Bob production"}),
    ("tenants:app_webhook_test", "post", {}),
]


@pytest.mark.parametrize("name", DASHBOARD_URLS)
def test_anonymous_users_are_sent_to_log_in(name):
    url = reverse(name)
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('tenants:login')}?next={url}"


@pytest.mark.parametrize("name", TEAM_ACTIONS)
def test_anonymous_users_cannot_run_team_actions(name, bob):
    response = Client().post(reverse(name, args=[1]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("tenants:login"))


@pytest.mark.parametrize(("name", "method", "data"), APP_URLS)
def test_anonymous_users_cannot_touch_an_app(name, method, data, bob_app):
    url = reverse(name, args=[bob_app.id])
    response = getattr(Client(), method)(url, data)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("tenants:login"))


@pytest.mark.parametrize(("name", "method", "data"), APP_URLS)
def test_another_tenants_app_is_a_404_and_stays_unchanged(name, method, data, alice_client, bob_app):
    before = App.objects.values().get(id=bob_app.id)
    response = getattr(alice_client, method)(reverse(name, args=[bob_app.id]), data)
    assert response.status_code == 404
    assert bob_app.secret not in response.content.decode()
    assert App.objects.values().get(id=bob_app.id) == before


def test_every_tenants_app_route_is_in_the_isolation_table():
    """A new per-app page must be added to APP_URLS above, so it gets the 404 check with real data."""
    tenant_routes = {name for name in per_app_routes() if name.startswith("tenants:")}
    assert tenant_routes == {name for name, _, _ in APP_URLS}


@pytest.mark.parametrize("name", sorted(set(per_app_routes())))
def test_no_dashboard_route_serves_another_tenants_app(name, alice_client, bob_app):
    """Including the metering pages other apps mount under /dashboard/."""
    url = reverse(name, args=[bob_app.id])
    statuses = {alice_client.get(url).status_code, alice_client.post(url, {}).status_code}
    # Whichever method the route serves answers 404; the other may be 405 (shows nothing).
    assert 404 in statuses and statuses <= {404, 405}


def test_app_list_shows_only_the_tenants_own_apps(alice_client, alice_app, bob_app):
    page = alice_client.get(reverse("tenants:app_list")).content.decode()
    assert alice_app.name in page and alice_app.key in page
    assert bob_app.name not in page and bob_app.key not in page


def test_a_teammate_sees_the_teams_apps(make_user, alice, alice_app):
    from tenants import services
    from tenants.models import Membership

    carol = make_user("carol@example.com")
    Membership.objects.filter(user=carol).update(tenant=services.tenant_of(alice), role="member")
    client = Client()
    client.force_login(carol)
    assert client.get(reverse("tenants:app_detail", args=[alice_app.id])).status_code == 200


def test_unknown_app_id_is_a_404(alice_client):
    assert alice_client.get(reverse("tenants:app_detail", args=[999999])).status_code == 404


@pytest.mark.parametrize(("name", "active"), [
    ("tenants:app_list", "Apps"), ("tenants:app_new", "Apps"), ("tenants:team", "Team"),
    ("tenants:password_change", None),
])
def test_the_nav_marks_the_current_section(alice_client, name, active):
    page = alice_client.get(reverse(name)).content.decode()
    nav = page.split('<nav class="nav"')[1].split("</nav>")[0]
    current = [label for label in ("Apps", "Team") if f'aria-current="page">{label}<' in nav]
    assert current == ([active] if active else [])
