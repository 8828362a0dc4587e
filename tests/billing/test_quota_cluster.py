"""The message quota is per tenant across the cluster: two processes on one Redis and one database."""

import asyncio

import pytest

from tests.metering.support import DashboardSession
from tests.support.processes import wait_until

from .quota_support import frames_until_pong, quota_shown, simple_publish, subscriber, tenant_on_plan


@pytest.mark.redis
async def test_traffic_through_one_process_uses_up_the_quota_on_every_process(pair):
    a, b = pair
    app = tenant_on_plan(a, "cluster-tiny", messages=40)
    owner = DashboardSession.owner_of(a, app["app_id"], "cluster@quota.test")
    on_b = {**app, "port": b.port}
    # Subscribers on both processes: each publish is 1 + 2 deliveries = 3 messages.
    listeners = [await subscriber(a, app, "orders"), await subscriber(b, on_b, "orders")]

    accepted = 0
    while True:
        status, body, _ = simple_publish(a, app, "orders", data=str(accepted))
        if status == 429:
            break
        assert status == 200 and accepted < 60, (status, body, accepted)
        accepted += 1
        await asyncio.sleep(0.05)
    assert accepted >= 14  # 14 x 3 = 42 >= 40
    for listener in listeners:
        assert len([f for f in await frames_until_pong(listener) if f.get("event") == "tick"]) == accepted

    # Process B reads the same cluster-wide day: what it gets before its next quota round
    # (about a second) goes through, then it answers 429 as well.
    results = wait_until(lambda: (lambda r: r if r[0] == 429 else None)(simple_publish(b, on_b, "orders")),
                         10, interval=0.2, what="process B refusing")
    assert "messages_per_day" in results[1]["error"]
    shown = quota_shown(owner.use(b), app["app_id"])
    assert shown["used"] >= 3 * accepted and shown["limit"] == 40 and shown["percent"] == 100.0
    for listener in listeners:
        await listener.ping_pong()
        await listener.close()
