"""The state methods of watchlist events and held-back webhooks, on every backend (see
test_state_contract.py), plus two Redis nodes agreeing and a dead node's users reaped."""

import asyncio
import uuid

import pytest

from service.realtime.state.base import ONLINE_CHANNEL
from tests.realtime.test_state_contract import redis_state, state, wipe  # noqa: F401 - the fixture

APP = 7


async def test_a_user_is_online_while_signed_in_on_any_connection(state):  # noqa: F811
    assert await state.users_online(APP, ["ann", "ben"]) == set()
    assert await state.user_online(APP, "1.1", "ann") is True
    assert await state.user_online(APP, "1.2", "ann") is False  # her second connection
    assert await state.users_online(APP, ["ann", "ben"]) == {"ann"}
    assert await state.users_online(APP + 1, ["ann"]) == set()  # per app
    assert await state.user_offline(APP, "1.1", "ann") is False
    assert await state.users_online(APP, ["ann"]) == {"ann"}
    assert await state.user_offline(APP, "1.2", "ann") is True  # her last
    assert await state.user_offline(APP, "1.2", "ann") is False  # idempotent
    assert await state.users_online(APP, ["ann"]) == set()
    assert await state.users_online(APP, []) == set()
    assert await state.members(APP, "presence-x") == {}  # nothing leaks into presence channels


async def test_a_held_webhook_is_released_once(state):  # noqa: F811
    assert await state.release_webhook(APP, "vacated:room") is False
    await state.hold_webhook(APP, "vacated:room", 30)
    assert await state.release_webhook(APP + 1, "vacated:room") is False  # per app
    assert await state.release_webhook(APP, "vacated:room") is True
    assert await state.release_webhook(APP, "vacated:room") is False
    await state.hold_webhook(APP, "removed:presence-x:7", 0.001)  # expired: as if never held
    await asyncio.sleep(0.05)
    assert await state.release_webhook(APP, "removed:presence-x:7") is False


async def test_a_hold_releases_only_its_own_mark(state):  # noqa: F811
    """Leave, return, leave again: the first leave's delay ends while the second holds the key.
    It must not take the second's mark (and send its webhook early)."""
    first = await state.hold_webhook(APP, "vacated:room", 30)
    assert await state.release_webhook(APP, "vacated:room") is True  # the return cancels it
    second = await state.hold_webhook(APP, "vacated:room", 30)
    assert second != first
    assert await state.release_webhook(APP, "vacated:room", first) is False
    assert await state.release_webhook(APP, "vacated:room", second) is True
    assert await state.release_webhook(APP, "vacated:room", second) is False


@pytest.mark.redis
async def test_two_nodes_agree_on_online_users_and_a_dead_node_is_reaped(redis_url):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    a, b = redis_state(redis_url, prefix), redis_state(redis_url, prefix, node_ttl=1)
    await a.start()
    await b.start()
    try:
        assert await b.user_online(APP, "2.1", "ann") is True
        assert await a.user_online(APP, "1.1", "ann") is False  # online already, on b
        assert await a.users_online(APP, ["ann", "ben"]) == {"ann"}
        assert await b.user_online(APP, "2.2", "ben") is True
        await b.hold_webhook(APP, "vacated:room", 30)
        assert await a.release_webhook(APP, "vacated:room") is True  # one mark for the cluster
        assert await b.release_webhook(APP, "vacated:room") is False
        # b dies (its heartbeat stops): ben goes offline, ann stays (a has her too).
        b._heartbeat_task.cancel()
        for _ in range(100):
            if await a.users_online(APP, ["ann", "ben"]) == {"ann"}:
                break
            await asyncio.sleep(0.05)
        assert await a.users_online(APP, ["ann", "ben"]) == {"ann"}
        departed = await a.reap_departed()
        assert [(app, channel, member.user_id) for app, channel, member in departed] == [(APP, ONLINE_CHANNEL, "ben")]
    finally:
        await a.stop()
        await b.stop()
        await wipe(redis_url, prefix)
