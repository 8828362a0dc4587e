"""The usage page's last five minutes: per-second connection counts kept in the state backend
(a ring per app, shared by the processes of a cluster), recorded after each traffic flush."""

import time
import uuid

import pytest
from redis import asyncio as aioredis

from billing.connection_history import ConnectionHistory, read
from service.realtime.state.base import CONNECTION_HISTORY_SECONDS
from service.realtime.state.memory import MemoryState
from service.realtime.state.redis import RedisState

APP, OTHER_APP = 7, 8


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def state(request):
    if request.param == "memory":
        backend = MemoryState()
        await backend.start()
        yield backend
        await backend.stop()
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    backend = RedisState(url=url, prefix=prefix, node_ttl=30)
    await backend.start()
    yield backend
    await backend.stop()
    client = aioredis.Redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_the_ring_keeps_the_last_five_minutes_per_app_oldest_first(state):
    start = 1_800_000_000
    for second in range(start, start + CONNECTION_HISTORY_SECONDS + 60):
        await state.note_connections(APP, second, second % 7, second % 11)
    await state.note_connections(OTHER_APP, start, 99, 99)
    history = await state.connection_history(APP, 0)
    assert len(history) == CONNECTION_HISTORY_SECONDS  # bounded: the oldest minute was overwritten
    assert history[0][0] == start + 60 and history[-1][0] == start + CONNECTION_HISTORY_SECONDS + 59
    assert [s for s, _, _ in history] == sorted(s for s, _, _ in history)
    assert all((sockets, tabs) == (second % 7, second % 11) for second, sockets, tabs in history)
    recent = await state.connection_history(APP, start + CONNECTION_HISTORY_SECONDS + 50)
    assert [s for s, _, _ in recent] == list(range(start + CONNECTION_HISTORY_SECONDS + 50,
                                                   start + CONNECTION_HISTORY_SECONDS + 60))
    assert await state.connection_history(OTHER_APP, 0) == [(start, 99, 99)]


async def test_processes_writing_the_same_second_leave_one_sample(state):
    await state.note_connections(APP, 1_800_000_000, 3, 5)
    await state.note_connections(APP, 1_800_000_000, 4, 6)  # another process, same second
    assert await state.connection_history(APP, 0) == [(1_800_000_000, 4, 6)]


class FakeHub:
    def __init__(self):
        self.serving: set[int] = set()

    def apps(self):
        return set(self.serving)


class FakeNode:
    def __init__(self, state):
        self.state = state
        self.hub = FakeHub()


async def test_the_flush_hook_records_served_apps_and_their_drop_to_zero(state):
    node = FakeNode(state)
    hook = ConnectionHistory(node)
    now = time.time()
    await state.connections_changed(APP, 2, 3)
    node.hub.serving = {APP}
    await hook.after_flush(now)
    assert await state.connection_history(APP, 0) == [(int(now), 2, 3)]
    # Everyone left: the app is no longer served here, but its zero is still recorded.
    await state.connections_changed(APP, -2, -3)
    node.hub.serving = set()
    await hook.after_flush(now + 1)
    assert await read(node, APP) == [{"t": int(now), "sockets": 2, "tabs": 3},
                                     {"t": int(now) + 1, "sockets": 0, "tabs": 0}]
    # Five minutes after its last socket here, an app is no longer recorded.
    await hook.after_flush(now + CONNECTION_HISTORY_SECONDS + 1)
    assert APP not in hook.recent
    assert len(await state.connection_history(APP, 0)) == 2
