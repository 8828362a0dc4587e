"""The usage API: session auth, tenant isolation, series shape and values, OpenAPI schema."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.rollups import persist_buckets


def _hour(dt: datetime) -> int:
    return int(dt.timestamp()) // 3600


@pytest.mark.parametrize("name", ["billing:api_usage", "billing:api_live"])
def test_api_needs_a_session(client, alice_app, name):
    assert client.get(reverse(name, args=[alice_app.id])).status_code == 403


@pytest.mark.parametrize("name", ["billing:api_usage", "billing:api_live"])
def test_api_hides_other_teams_apps(alice_client, bob_app, name):
    response = alice_client.get(reverse(name, args=[bob_app.id]))
    assert response.status_code == 404


def test_live_of_an_idle_app(alice_client, alice_app):
    body = alice_client.get(reverse("billing:api_live", args=[alice_app.id])).json()
    assert body["sockets"] == 0 and body["tabs"] == 0 and body["connections_saved"] == 0
    assert body["totals"]["messages"] == 0


def test_usage_24h_is_hourly_with_summary_and_savings(alice_client, alice_app):
    now = timezone.now()
    persist_buckets(alice_app.id, "redis-a", [
        {"hour": _hour(now) - 1, "messages": 10, "deliveries": 30, "bytes": 3000, "logical_deliveries": 50,
         "logical_bytes": 5000, "resumes_recovered": 4, "resumes_unrecovered": 1, "stored_messages": 10,
         "stored_bytes": 900, "tab_seconds": 3600.0, "peak_sockets": 3, "peak_tabs": 5},
        {"hour": _hour(now), "messages": 2, "deliveries": 4, "bytes": 400, "logical_deliveries": 4,
         "logical_bytes": 400, "stored_messages": 2, "stored_bytes": 80, "tab_seconds": 10.0, "peak_sockets": 2,
         "peak_tabs": 2},
    ])
    body = alice_client.get(reverse("billing:api_usage", args=[alice_app.id]), {"range": "24h"}).json()
    assert body["granularity"] == "hour" and len(body["points"]) == 24
    assert body["points"][-1]["messages"] == 2 and body["points"][-2]["messages"] == 10
    assert body["summary"] == {"messages": 12, "deliveries": 34, "bytes": 3400, "logical_deliveries": 54,
                               "logical_bytes": 5400, "resumes_recovered": 4, "resumes_unrecovered": 1,
                               "stored_messages": 12, "stored_bytes": 980, "tab_seconds": 3610.0,
                               "peak_sockets": 3, "peak_tabs": 5}
    assert body["points"][-1]["stored_bytes"] == 80 and body["points"][-2]["resumes_recovered"] == 4
    saved = {s["key"]: s["value"] for s in body["savings"]}
    assert saved["connections"] == 2 and saved["deliveries"] == 20 and saved["bytes"] == 2000
    assert all(s["sentence"] for s in body["savings"])


def test_usage_30d_is_daily(alice_client, alice_app):
    day_ago = timezone.now() - timedelta(days=1)
    persist_buckets(alice_app.id, "redis-a", [{"hour": _hour(day_ago), "messages": 7, "peak_sockets": 1}])
    body = alice_client.get(reverse("billing:api_usage", args=[alice_app.id]), {"range": "30d"}).json()
    assert body["granularity"] == "day" and len(body["points"]) == 30
    assert body["points"][-2]["messages"] == 7 and body["points"][-2]["start"].startswith(str(day_ago.date()))
    assert body["summary"]["messages"] == 7


def test_usage_rejects_unknown_range(alice_client, alice_app):
    response = alice_client.get(reverse("billing:api_usage", args=[alice_app.id]), {"range": "1y"})
    assert response.status_code == 400


def test_usage_is_in_the_openapi_schema(client, db):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").content.decode()
    assert "/dashboard/api/apps/{app_id}/usage" in schema and "/dashboard/api/apps/{app_id}/live" in schema
    assert "peak_tabs" in schema and "logical_deliveries" in schema
    assert "resumes_unrecovered" in schema and "stored_bytes" in schema


def test_series_starts_on_hour_boundaries(alice_client, alice_app):
    body = alice_client.get(reverse("billing:api_usage", args=[alice_app.id])).json()
    last = datetime.fromisoformat(body["points"][-1]["start"].replace("Z", "+00:00"))
    assert last == timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
