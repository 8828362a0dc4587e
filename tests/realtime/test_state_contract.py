"""The ClusterState contract, run against every backend (like Django's SessionTestsMixin).

``StateContract`` holds what any backend must do for one process; ``TestSharedRedisState``
adds what only a shared backend can show: several nodes agreeing, dead nodes ignored, and
the heartbeat healing entries that Redis lost.

The Redis backend runs on each topology it supports: one Redis, a Redis Cluster (3 masters:
every script must stay in one slot) and a Sentinel-watched master (tests/support/redis_topologies.py).
"""

import asyncio
import contextlib
import uuid

import pytest
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

from service.realtime.hub import AppTraffic
from service.realtime.local_layer import LocalChannelLayer
from service.realtime.node import Node
from service.realtime.state import CachedEvent, Member
from service.realtime.state.memory import MemoryState
from service.realtime.outage import redis_outage
from service.realtime.state import redis as redis_state_module
from service.realtime.state.redis import RedisState
from tests.support.processes import RedisProcess
from tests.support.redis_topologies import ClusterTopology, SentinelTopology, async_client, delete_prefix

APP, OTHER_APP = 7, 8
HOUR = 490_000
# Recovery's counters (TRAFFIC_FIELDS), zero in the tests that count other traffic.
NO_RECOVERY = dict.fromkeys(("resumes_recovered", "resumes_unrecovered", "stored_messages", "stored_bytes"), 0)


def redis_state(url: str, prefix: str, node_ttl: float = 30) -> RedisState:
    return RedisState(url=url, prefix=prefix, node_ttl=node_ttl)


async def wipe(url: str, prefix: str) -> None:
    await delete_prefix(url, prefix)


_topologies: dict[str, str] = {}  # topology -> its URL, started once per session (stopped at its end)


def topology_url(request, name: str) -> str:
    """The URL of a Redis topology: "redis" (the session's redis-server), "cluster" (3 masters),
    "sentinel" (master + replica + 3 sentinels). Started on first use (other modules that
    import the ``state`` fixture get them too, with no fixture of their own)."""
    if name == "redis":
        return request.getfixturevalue("redis_url")
    if name not in _topologies:
        topology = ClusterTopology(masters=3) if name == "cluster" else SentinelTopology()
        topology.start()
        request.config.add_cleanup(topology.stop)
        _topologies[name] = topology.url
    return _topologies[name]


REDIS_PARAMS = [pytest.param(name, marks=pytest.mark.redis) for name in ("redis", "cluster", "sentinel")]


@pytest.fixture(params=["memory", *REDIS_PARAMS])
async def state(request):
    if request.param == "memory":
        backend = MemoryState()
        await backend.start()
        yield backend
        await backend.stop()
        return
    url = topology_url(request, request.param)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    backend = redis_state(url, prefix)
    await backend.start()
    yield backend
    await backend.stop()
    await wipe(url, prefix)


def fail_once(method, after: bool):
    """``method`` that raises ConnectionError on its first call (``after``: once it has done its work)."""
    calls = []

    async def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1 and not after:
            raise RedisConnectionError("injected: connection lost")
        result = await method(*args, **kwargs)
        if len(calls) == 1:
            raise RedisConnectionError("injected: connection lost before the reply")
        return result

    return flaky


class StateContract:
    async def test_subscription_counts_are_per_socket(self, state):
        assert await state.add_subscription(APP, "news", "1.1") == 1
        assert await state.add_subscription(APP, "news", "1.2") == 2
        assert await state.add_subscription(APP, "news", "1.2") == 2  # the same socket twice counts once
        assert await state.subscription_count(APP, "news") == 2
        assert await state.remove_subscription(APP, "news", "1.1") == 1
        assert await state.remove_subscription(APP, "news", "9.9") == 1  # never subscribed: no change
        assert await state.remove_subscription(APP, "news", "1.2") == 0
        assert await state.subscription_count(APP, "news") == 0
        assert await state.remove_subscription(APP, "news", "1.2") == 0

    async def test_channels_lists_occupied_channels_by_prefix(self, state):
        await state.add_subscription(APP, "presence-room", "1.1")
        await state.add_subscription(APP, "presence-room", "1.2")
        await state.add_subscription(APP, "news", "1.1")
        await state.add_subscription(APP, "gone", "1.3")
        await state.remove_subscription(APP, "gone", "1.3")
        assert await state.channels(APP) == {"presence-room": 2, "news": 1}
        assert await state.channels(APP, "presence-") == {"presence-room": 2}
        assert await state.channels(APP, "private-") == {}

    async def test_presence_reports_first_and_last_socket_of_a_user(self, state):
        alice = Member("alice", {"name": "Alice"})
        assert await state.add_member(APP, "presence-r", "1.1", alice) is True
        assert await state.add_member(APP, "presence-r", "1.2", alice) is False
        assert await state.add_member(APP, "presence-r", "1.3", Member(2)) is True
        assert await state.remove_member(APP, "presence-r", "1.1", "alice") is False
        assert await state.remove_member(APP, "presence-r", "1.2", "alice") is True
        assert await state.remove_member(APP, "presence-r", "1.2", "alice") is False
        assert await state.remove_member(APP, "presence-r", "1.9", "nobody") is False

    async def test_members_keep_ids_and_info_as_given(self, state):
        await state.add_member(APP, "presence-r", "1.1", Member("alice", {"name": "Alice", "n": [1, 2]}))
        await state.add_member(APP, "presence-r", "1.2", Member(2, None))
        assert await state.add_member(APP, "presence-r", "1.3", Member("2")) is False  # 2 and "2": one user
        members = await state.members(APP, "presence-r")
        assert members == {"alice": Member("alice", {"name": "Alice", "n": [1, 2]}), "2": Member(2, None)}
        assert await state.members(APP, "presence-empty") == {}

    async def test_concurrent_changes_leave_the_latest_counts_and_members(self, state):
        # A burst of connects and subscribes, all in flight at once (on Redis: on several pooled
        # connections), then half of them leaving, again at once.
        sockets = [f"1.{i}" for i in range(60)]
        await asyncio.gather(*(state.connections_changed(APP, 1, 1) for _ in sockets),
                             *(state.add_subscription(APP, "news", socket) for socket in sockets))
        assert await state.connection_counts(APP) == (60, 60)
        assert await state.subscription_count(APP, "news") == 60
        await asyncio.gather(*(state.connections_changed(APP, -1, -1) for _ in sockets[:30]),
                             *(state.remove_subscription(APP, "news", socket) for socket in sockets[:30]))
        assert await state.connection_counts(APP) == (30, 30)
        assert await state.subscription_count(APP, "news") == 30
        # A member who joins and leaves at once is gone, not left behind.
        member = Member("u1", {"name": "Ann"})
        await asyncio.gather(state.add_member(APP, "presence-room", "2.1", member),
                             state.remove_member(APP, "presence-room", "2.1", member.key))
        assert await state.members(APP, "presence-room") == {}

    async def test_connection_counts_add_up_deltas(self, state):
        await state.connections_changed(APP, 1, 1)
        await state.connections_changed(APP, 1, 3)
        assert await state.connection_counts(APP) == (2, 4)
        await state.connections_changed(APP, 0, -2)
        assert await state.connection_counts(APP) == (2, 2)
        await state.connections_changed(APP, -2, -2)
        assert await state.connection_counts(APP) == (0, 0)
        assert await state.connection_counts(OTHER_APP) == (0, 0)

    async def test_cache_keeps_the_last_event_with_its_ttl(self, state):
        assert await state.cache_get(APP, "cache-x") is None
        await state.cache_set(APP, "cache-x", CachedEvent('{"frame":1}', "a", "1", 60))
        await state.cache_set(APP, "cache-x", CachedEvent('{"frame":2}', "b", "2", 60))
        cached = await state.cache_get(APP, "cache-x")
        assert (cached.frame, cached.event, cached.data) == ('{"frame":2}', "b", "2")
        assert 0 < cached.ttl <= 60

    async def test_traffic_totals_accumulate(self, state):
        assert await state.traffic_totals(APP) == dict.fromkeys(
            ("messages", "deliveries", "bytes", "logical_deliveries", "logical_bytes", *NO_RECOVERY), 0)
        await state.add_traffic(APP, 1, 10, 100)
        await state.add_traffic(APP, 2, 20, 200, logical_deliveries=30, logical_bytes=300)
        assert await state.traffic_totals(APP) == {
            "messages": 3, "deliveries": 30, "bytes": 300, "logical_deliveries": 30, "logical_bytes": 300,
            **NO_RECOVERY}

    async def test_metering_flush_writes_totals_and_bucket_once_per_seq(self, state):
        assert await state.add_metering(APP, HOUR, 1, 10, 100, 20, 200, tab_seconds=1.5, seq=1) is True
        assert await state.add_metering(APP, HOUR, 1, 10, 100, 20, 200, tab_seconds=1.5, seq=1) is False  # a retry
        assert await state.add_metering(APP, HOUR, 2, 0, 0, seq=2) is True
        assert await state.add_metering(OTHER_APP, HOUR, 5, 5, 5, seq=2) is True  # seqs are per app
        assert await state.traffic_totals(APP) == {
            "messages": 3, "deliveries": 10, "bytes": 100, "logical_deliveries": 20, "logical_bytes": 200,
            **NO_RECOVERY}
        assert await state.usage(APP, HOUR) == [
            {"hour": HOUR, "messages": 3, "deliveries": 10, "bytes": 100, "logical_deliveries": 20,
             "logical_bytes": 200, **NO_RECOVERY, "tab_seconds": 1.5, "peak_sockets": 0, "peak_tabs": 0}]

    async def test_metering_flush_carries_the_recovery_counters(self, state):
        """The node's flush passes every TRAFFIC_FIELDS counter in order, then tab_seconds."""
        node = Node(layer=LocalChannelLayer(), state=state)
        node.hub.traffic[APP] = AppTraffic(messages=2, resumes_recovered=3, resumes_unrecovered=1,
                                           stored_messages=2, stored_bytes=90)
        await node._flush_traffic_once()
        recovery = {"resumes_recovered": 3, "resumes_unrecovered": 1, "stored_messages": 2, "stored_bytes": 90}
        totals = await state.traffic_totals(APP)
        assert {k: totals[k] for k in ("messages", *recovery)} == {"messages": 2, **recovery}
        [bucket] = await state.usage(APP, 0)
        assert {k: bucket[k] for k in ("messages", *recovery)} == {"messages": 2, **recovery}
        await state.add_usage(APP, bucket["hour"], 0, 0, 0, stored_messages=1, stored_bytes=10, tab_seconds=0.5)
        [bucket] = await state.usage(APP, 0)
        assert (bucket["stored_messages"], bucket["stored_bytes"]) == (3, 100)

    @pytest.mark.parametrize("failure", ["between", "within"])
    async def test_a_failed_metering_flush_is_counted_once_after_the_retry(self, state, monkeypatch, failure):
        """The node's flush fails once, half done: between its writes, or after Redis applied it
        but before the reply came back. The retry must count the traffic once, not twice."""
        node = Node(layer=LocalChannelLayer(), state=state)
        node.hub.traffic[APP] = AppTraffic(deliveries=30, bytes=300, messages=3, logical_deliveries=40,
                                           logical_bytes=400)
        if failure == "between":  # the second of two separate writes fails
            monkeypatch.setattr(state, "add_usage", fail_once(state.add_usage, after=False))
        else:  # the combined write is applied, then the connection drops before its reply
            monkeypatch.setattr(state, "add_metering", fail_once(getattr(state, "add_metering", None), after=True),
                                raising=False)
            monkeypatch.setattr(state, "add_traffic", fail_once(state.add_traffic, after=True))
        # (A flush that makes one combined write has no "between": then nothing fails here.)
        with contextlib.suppress(RedisConnectionError):
            await node._flush_traffic_once()
            assert failure == "between", "the injected failure must reach the flush"
        await node._flush_traffic_once()  # the next round retries
        await node._flush_traffic_once()
        assert await state.traffic_totals(APP) == {
            "messages": 3, "deliveries": 30, "bytes": 300, "logical_deliveries": 40, "logical_bytes": 400,
            **NO_RECOVERY}
        [bucket] = await state.usage(APP, 0)
        assert (bucket["messages"], bucket["deliveries"], bucket["bytes"]) == (3, 30, 300)

    async def test_usage_buckets_add_counts_and_keep_peaks(self, state):
        await state.add_usage(APP, HOUR, 1, 2, 3, 4, 5, tab_seconds=1.5)
        await state.add_usage(APP, HOUR, 1, 2, 3, 4, 5, tab_seconds=2.25)
        await state.note_peaks(APP, HOUR, 5, 9)
        await state.note_peaks(APP, HOUR, 3, 12)
        await state.note_peaks(APP, HOUR + 1, 1, 1)
        assert await state.usage(APP, HOUR) == [
            {"hour": HOUR, "messages": 2, "deliveries": 4, "bytes": 6, "logical_deliveries": 8,
             "logical_bytes": 10, **NO_RECOVERY, "tab_seconds": 3.75, "peak_sockets": 5, "peak_tabs": 12},
            {"hour": HOUR + 1, "messages": 0, "deliveries": 0, "bytes": 0, "logical_deliveries": 0,
             "logical_bytes": 0, **NO_RECOVERY, "tab_seconds": 0.0, "peak_sockets": 1, "peak_tabs": 1},
        ]
        assert [b["hour"] for b in await state.usage(APP, HOUR + 1)] == [HOUR + 1]

    async def test_usage_buckets_are_kept_48_hours(self, state):
        await state.add_usage(APP, HOUR, 1, 1, 1)
        await state.add_usage(APP, HOUR + 48, 1, 1, 1)
        assert [b["hour"] for b in await state.usage(APP, 0)] == [HOUR, HOUR + 48]
        await state.add_usage(APP, HOUR + 49, 1, 1, 1)
        assert [b["hour"] for b in await state.usage(APP, 0)] == [HOUR + 48, HOUR + 49]

    async def test_apps_never_see_each_other(self, state):
        await state.add_subscription(APP, "shared-name", "1.1")
        await state.add_member(APP, "presence-shared", "1.1", Member("alice"))
        await state.connections_changed(APP, 1, 1)
        await state.cache_set(APP, "cache-shared", CachedEvent("f", "e", "d", 60))
        await state.add_traffic(APP, 1, 1, 1)
        await state.add_usage(APP, HOUR, 1, 1, 1)
        assert await state.channels(OTHER_APP) == {}
        assert await state.subscription_count(OTHER_APP, "shared-name") == 0
        assert await state.members(OTHER_APP, "presence-shared") == {}
        assert await state.add_member(OTHER_APP, "presence-shared", "2.1", Member("alice")) is True
        assert await state.connection_counts(OTHER_APP) == (0, 0)
        assert await state.cache_get(OTHER_APP, "cache-shared") is None
        assert (await state.traffic_totals(OTHER_APP))["messages"] == 0
        assert await state.usage(OTHER_APP, 0) == []

    async def test_no_departures_without_dead_processes(self, state):
        await state.add_member(APP, "presence-r", "1.1", Member("alice"))
        assert await state.reap_departed() == []

    async def test_usage_source_names_the_bucket_store(self, state):
        assert state.usage_source


class TestState(StateContract):
    """Every backend, one process."""


@pytest.fixture(params=REDIS_PARAMS)
def shared_url(request):
    """The URL of each Redis topology in turn."""
    return topology_url(request, request.param)


@pytest.mark.redis
class TestSharedRedisState:
    """Several nodes on one Redis behave as one server."""

    @pytest.fixture
    async def nodes(self, shared_url):
        redis_url = shared_url
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        made = []

        async def make(**options) -> RedisState:
            node = redis_state(redis_url, prefix, **options)
            await node.start()
            made.append(node)
            return node

        yield make
        for node in made:
            await node.stop()
        await wipe(redis_url, prefix)

    async def test_counts_add_up_across_nodes(self, nodes):
        a, b = await nodes(), await nodes()
        assert await a.add_subscription(APP, "news", "1.1") == 1
        assert await b.add_subscription(APP, "news", "2.1") == 2
        await a.connections_changed(APP, 1, 1)
        await b.connections_changed(APP, 2, 5)
        assert await a.channels(APP) == await b.channels(APP) == {"news": 2}
        assert await a.connection_counts(APP) == await b.connection_counts(APP) == (3, 6)
        assert await b.remove_subscription(APP, "news", "2.1") == 1

    async def test_member_added_exactly_once_when_two_nodes_race(self, nodes):
        a, b = await nodes(), await nodes()
        for round_ in range(20):
            channel = f"presence-race-{round_}"
            firsts = await asyncio.gather(a.add_member(APP, channel, "1.1", Member("u")),
                                          b.add_member(APP, channel, "2.1", Member("u")))
            assert sorted(firsts) == [False, True]
            lasts = await asyncio.gather(a.remove_member(APP, channel, "1.1", "u"),
                                         b.remove_member(APP, channel, "2.1", "u"))
            assert sorted(lasts) == [False, True]

    async def test_a_busy_pool_is_waited_for_not_taken_for_an_outage(self, nodes, monkeypatch):
        """Under load every pooled connection is busy for longer than the pool's wait timeout.

        That is not Redis being away: answering "first socket of this user" from local state
        (as during an outage) sent member_added a second time for a user present elsewhere.
        """
        monkeypatch.setitem(settings.TABCAST, "REDIS_POOL_SIZE", 1)
        monkeypatch.setattr(redis_state_module, "POOL_SIZE", 1)  # (the constant before the setting)
        a, b = await nodes(), await nodes()
        assert await b.add_member(APP, "presence-r", "2.1", Member("u")) is True
        # 40 commands each holding a's only connection for 0.1-0.2 s: the last in line waits 6-7 s
        # (redis-py's pool gave up after 5 s).
        load = [a.redis.blpop([f"{a.prefix}:nothing"], timeout=0.1) for _ in range(40)]
        *waited, first = await asyncio.gather(*load, a.add_member(APP, "presence-r", "1.1", Member("u")),
                                              return_exceptions=True)
        assert first is False  # present through b: no second member_added
        assert not [outcome for outcome in waited if isinstance(outcome, Exception)]
        assert a._reachable and "state" not in redis_outage.down
        assert list(await b.members(APP, "presence-r")) == ["u"]

    async def test_member_removed_only_after_the_last_node_lets_go(self, nodes):
        a, b = await nodes(), await nodes()
        assert await a.add_member(APP, "presence-r", "1.1", Member("u", {"on": "a"})) is True
        assert await b.add_member(APP, "presence-r", "2.1", Member("u", {"on": "b"})) is False
        assert await a.remove_member(APP, "presence-r", "1.1", "u") is False
        assert list(await a.members(APP, "presence-r")) == ["u"]
        assert await b.remove_member(APP, "presence-r", "2.1", "u") is True
        assert await a.members(APP, "presence-r") == {}

    async def test_stop_removes_the_nodes_entries_and_hands_its_members_to_a_reaper(self, nodes):
        a, b = await nodes(), await nodes()
        await b.add_subscription(APP, "news", "2.1")
        await b.add_member(APP, "presence-r", "2.1", Member("u", {"x": 1}))
        await b.add_member(APP, "presence-r", "2.2", Member("both"))
        await a.add_member(APP, "presence-r", "1.1", Member("both"))
        await b.connections_changed(APP, 1, 1)
        await b.stop()
        assert await a.channels(APP) == {}
        assert list(await a.members(APP, "presence-r")) == ["both"]
        assert await a.connection_counts(APP) == (0, 0)
        # "u" left with b (member_removed is due); "both" is still present through a.
        assert await a.reap_departed() == [(APP, "presence-r", Member("u", {"x": 1}))]
        assert await a.reap_departed() == []

    async def test_a_node_whose_heartbeat_expired_is_ignored(self, nodes, shared_url):
        a, dead = await nodes(), await nodes()
        await dead.add_subscription(APP, "news", "2.1")
        await dead.add_member(APP, "presence-r", "2.1", Member("u"))
        await dead.connections_changed(APP, 1, 1)
        dead._heartbeat_task.cancel()  # as if killed with -9: no more heartbeats, no cleanup
        client = async_client(shared_url)
        # Its expiry time has passed, in the nodes list and in the app's (both come from its heartbeat).
        await client.zadd(a._nodes_key, {dead.node_id: 0})
        await client.zadd(a._app_nodes_key(APP), {dead.node_id: 0})
        await client.aclose()
        assert await a.channels(APP) == {}
        assert await a.subscription_count(APP, "news") == 0
        assert await a.members(APP, "presence-r") == {}
        assert await a.connection_counts(APP) == (0, 0)
        # Exactly one live node claims the dead one and learns whose member_removed is due.
        claims = await asyncio.gather(a.reap_departed(), (await nodes()).reap_departed())
        assert sorted(claims, key=len) == [[], [(APP, "presence-r", Member("u"))]]
        assert await a.add_member(APP, "presence-r", "1.1", Member("u")) is True

    async def test_entries_expire_without_heartbeat(self, nodes, shared_url):
        dead = await nodes(node_ttl=1)
        await dead.add_subscription(APP, "news", "2.1")
        dead._heartbeat_task.cancel()
        client = async_client(shared_url)
        ttls = [await client.pttl(key) async for key in client.scan_iter(match=f"{dead.prefix}:*:{dead.node_id}*")]
        await client.aclose()
        assert ttls and all(0 < ttl <= 2 * 1000 for ttl in ttls)  # 2 x NODE_TTL: long enough to be reaped

    async def test_heartbeat_rewrites_what_redis_lost(self, nodes, shared_url):
        redis_url = shared_url
        a, b = await nodes(), await nodes()
        await b.add_subscription(APP, "news", "2.1")
        await b.add_member(APP, "presence-r", "2.1", Member("u", {"x": 1}))
        await b.connections_changed(APP, 1, 2)
        await wipe(redis_url, a.prefix)  # what a Redis restart without persistence does
        assert await a.channels(APP) == {}
        await a._heartbeat()
        await b._heartbeat()
        assert await a.channels(APP) == {"news": 1}
        assert await a.members(APP, "presence-r") == {"u": Member("u", {"x": 1})}
        assert await a.connection_counts(APP) == (1, 2)

    async def test_heartbeat_rewrites_a_key_that_redis_evicted(self, nodes, shared_url):
        a, b = await nodes(), await nodes()
        await b.add_subscription(APP, "news", "2.1")
        client = async_client(shared_url)
        await client.delete(b._key(APP, "subs", b.node_id))  # the node itself is still known
        await client.aclose()
        assert await a.channels(APP) == {}
        await b._heartbeat()
        assert await a.channels(APP) == {"news": 1}

    async def test_writes_while_redis_is_away_are_published_on_reconnect(self):
        server = RedisProcess().start()
        try:
            a, b = redis_state(server.url, "away"), redis_state(server.url, "away")
            await a.start()
            await b.start()
            await a.add_subscription(APP, "news", "1.1")
            await a.add_subscription(APP, "old", "1.1")
            server.stop()
            # The socket path keeps working on local truth; reads (the HTTP API) fail.
            assert await a.add_subscription(APP, "news", "1.2") == 2
            assert await a.remove_subscription(APP, "old", "1.1") == 0
            assert await a.add_member(APP, "presence-r", "1.2", Member("u")) is True
            await a.connections_changed(APP, 2, 2)
            with pytest.raises(RedisConnectionError):
                await b.channels(APP)
            server.start()
            await a._heartbeat()
            # b failed a read, so it knows Redis was away: its own heartbeat notices the return quickly.
            for _ in range(100):
                if b._reachable:
                    break
                await asyncio.sleep(0.02)
            assert await b.channels(APP) == {"news": 2}
            assert list(await b.members(APP, "presence-r")) == ["u"]
            assert await b.connection_counts(APP) == (2, 2)
            await a.stop()
            await b.stop()
        finally:
            server.stop()


def test_every_key_a_script_touches_is_passed_in_keys():
    """On a Redis Cluster a script may touch only the keys it declares (all of one slot): no
    script builds a key name. Each redis.call's key is KEYS[...] or a local bound to one."""
    import re

    from service.realtime.state import redis_scripts

    bound_to_keys = re.compile(r"KEYS\[[^\]]+\]|key|bucket|hours_key")  # `key` iterates live_keys(), all KEYS
    checked = 0
    for name, source in vars(redis_scripts).items():
        if not isinstance(source, str) or "redis.call" not in source:
            continue
        for command, first in re.findall(r"redis\.call\('(\w+)'(?:,\s*([^,)]+))?", source):
            if command == "TIME":
                continue
            assert bound_to_keys.fullmatch(first.strip()), (name, command, first)
            checked += 1
    assert checked > 50
