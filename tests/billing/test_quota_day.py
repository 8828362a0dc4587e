"""The message quota's UTC day, with an injected clock: the watcher that runs after each traffic
flush in a server process, over a real in-memory cluster state and the database."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async

from billing.models import Plan, Subscription
from billing.quotas import MessageQuotaWatch
from billing.rollups import persist_buckets
from service.realtime import quotas
from service.realtime.state.memory import MemoryState
from tenants import services
from tenants.models import Tenant

LATE = datetime(2026, 11, 29, 23, 59, 58, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def fresh_quota_state():
    quotas.forget_limits()
    quotas._blocked.clear()
    yield
    quotas.forget_limits()
    quotas._blocked.clear()


def _tenant_on_tiny_plan():
    plan = Plan.objects.create(code="tiny", name="Tiny", max_messages_per_day=50)
    tenant = Tenant.objects.create(name="Tiny team")
    Subscription.objects.create(tenant=tenant, plan=plan)
    app = services.create_app("tiny app", tenant=tenant)
    return SimpleNamespace(id=app.id, tenant_id=tenant.id)


@pytest.mark.django_db(transaction=True)
async def test_the_quota_counts_the_utc_day_and_lifts_at_midnight(monkeypatch):
    now = [LATE]
    monkeypatch.setattr(quotas, "clock", lambda: now[0])
    app = await sync_to_async(_tenant_on_tiny_plan)()
    state = MemoryState()
    watch = MessageQuotaWatch(SimpleNamespace(state=state), every=0)
    hour = int(LATE) // 3600  # 23:00 UTC

    async def round_after(app_id=app.id):
        watch.note(app_id, "published", {})
        await watch.after_flush()

    await state.add_usage(app.id, hour - 24, 1_000, 0, 0)  # yesterday: not today's
    await state.add_usage(app.id, hour - 23, 5, 15, 0)  # 00:00 today
    # An earlier process of today (embedded mode: its buckets died with it, its rollups remain).
    await sync_to_async(persist_buckets)(app.id, "memory-earlier", [{"hour": hour - 1, "messages": 3,
                                                                     "deliveries": 6}])
    await round_after()
    assert quotas.message_refusal(app) is None  # 29 of 50

    await state.add_usage(app.id, hour, 7, 14, 0)  # 50 of 50
    await round_after()
    hit = quotas.message_refusal(app)
    assert (hit.limit, hit.resets_at_iso, hit.retry_after()) == (50, "2026-11-30T00:00:00Z", 2)

    now[0] = LATE + 2  # 00:00:00 UTC: the flag lifts by itself, before any refresh
    assert quotas.message_refusal(app) is None
    await round_after()  # and the refresh agrees: the new day has no messages yet
    assert quotas.message_refusal(app) is None

    await state.add_usage(app.id, hour + 1, 10, 40, 0)
    await round_after()
    assert quotas.message_refusal(app).resets_at_iso == "2026-12-01T00:00:00Z"


@pytest.mark.django_db(transaction=True)
async def test_a_plan_upgrade_lifts_the_block_at_the_next_refresh(monkeypatch):
    monkeypatch.setattr(quotas, "clock", lambda: LATE)
    app = await sync_to_async(_tenant_on_tiny_plan)()
    state = MemoryState()
    watch = MessageQuotaWatch(SimpleNamespace(state=state), every=0)
    await state.add_usage(app.id, int(LATE) // 3600, 60, 0, 0)
    watch.note(app.id, "published", {})
    await watch.after_flush()
    assert quotas.message_refusal(app) is not None

    await sync_to_async(Plan.objects.filter(code="tiny").update)(max_messages_per_day=1_000)
    quotas.forget_limits()  # what APP_CACHE_SECONDS does with time
    await watch.after_flush()  # blocked tenants are re-read even without new publishes
    assert quotas.message_refusal(app) is None
