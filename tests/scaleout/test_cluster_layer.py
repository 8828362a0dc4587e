"""The Redis Cluster channel layer (sharded pub/sub) on a real 3-master cluster.

Two layer instances stand for two processes. What a publisher relies on: each publish reaches
every subscribed process once, in order, touching only the shard of its channel; a slot that
moves to another master (resharding) and a master that dies (failover) end with delivery
working again, and the broker is told meanwhile (publishes answer 503, never vanish silently).
"""

import asyncio
import re
import uuid

import pytest

from service.realtime.broker import UNREACHABLE, DeliveryUnavailable, LayerBroker
from service.realtime.cluster_layer import ClusterChannelLayer, shard_channel
from service.realtime.outage import Outage
from service.realtime.streams import Position, Stream, redis_keys
from tests.support.redis_topologies import ClusterTopology

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def topology():
    cluster = ClusterTopology(masters=3).start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def pair(topology):
    """(sender, receiver, receiver's channel, prefix): two layers on the cluster."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    sender = ClusterChannelLayer(url=topology.url, prefix=prefix)
    receiver = ClusterChannelLayer(url=topology.url, prefix=prefix)
    channel = await receiver.new_channel("specific.test.")
    yield sender, receiver, channel, prefix
    await sender.flush()
    await receiver.flush()


def groups_on_every_master(topology: ClusterTopology, prefix: str, count: int = 12) -> list[str]:
    """Group names whose shard channels land on each master (at least one per master)."""
    groups, masters = [], set()
    i = 0
    while len(groups) < count or len(masters) < len(topology.masters()):
        group = f"tc.1.g{i}"
        masters.add(topology.master_of(shard_channel(prefix, group)).address)
        groups.append(group)
        i += 1
    return groups


def commandstats(server) -> dict[str, int]:
    """calls per command of one redis-server (INFO commandstats)."""
    return {name: int(calls) for name, calls in re.findall(r"cmdstat_([a-z|]+):calls=(\d+)", server.command("INFO", "commandstats"))}


async def test_concurrent_publishes_reach_another_process_once_each_and_in_order(topology, pair):
    sender, receiver, channel, prefix = pair
    groups = groups_on_every_master(topology, prefix)
    for group in groups:
        await receiver.group_add(group, channel)
        assert receiver.is_subscribed(group)
    assert [await sender.subscribers(group) for group in groups] == [1] * len(groups)

    # Four publishers, 200 messages each, to every group, all in flight at once: per master pipelines.
    async def publisher(name: str) -> list[int]:
        return [await sender.group_send(groups[seq % len(groups)], {"type": "publish", "by": name, "seq": seq})
                for seq in range(200)]

    receivers = await asyncio.gather(*(publisher(name) for name in "abcd"))
    assert {count for counts in receivers for count in counts} == {1}  # SPUBLISH's reply: one process
    received = [await asyncio.wait_for(receiver.receive(channel), 10) for _ in range(800)]
    # Order holds per channel (each is on one shard); channels on different shards arrive over
    # different connections, so not in one order across them (Pusher promises none either).
    for name in "abcd":
        for i, group in enumerate(groups):
            sent = [seq for seq in range(200) if seq % len(groups) == i]
            assert [m["seq"] for m in received if m["by"] == name and m["seq"] % len(groups) == i] == sent, group
        assert sorted(m["seq"] for m in received if m["by"] == name) == list(range(200))  # each once

    await receiver.group_discard(groups[0], channel)
    assert await sender.group_send(groups[0], {"type": "publish"}) == 0
    assert not receiver.is_subscribed(groups[0])


async def test_a_publish_touches_only_the_shard_of_its_channel(topology, pair):
    sender, receiver, channel, prefix = pair
    group = "tc.7.orders"
    owner = topology.master_of(shard_channel(prefix, group))
    await receiver.group_add(group, channel)
    before = {server.address: commandstats(server) for server in topology.masters()}
    for i in range(50):
        await sender.group_send(group, {"type": "publish", "i": i})
    for _ in range(50):
        await asyncio.wait_for(receiver.receive(channel), 10)
    for server in topology.masters():
        after = commandstats(server)
        published = after.get("spublish", 0) - before[server.address].get("spublish", 0)
        assert published == (50 if server is owner else 0), server.address
        assert after.get("publish", 0) == before[server.address].get("publish", 0)  # never a cluster-wide PUBLISH


async def test_a_recorded_publish_keeps_its_history_in_the_slot_of_its_channel(topology, pair):
    sender, receiver, channel, prefix = pair
    group = "tc.7.history"
    await receiver.group_add(group, channel)
    stream = Stream(group, size=3, ttl=60)
    for i in range(5):
        frame = f'{{"event":"tick","channel":"history","data":"{i}"}}'
        assert await sender.group_send(group, {"type": "tc.publish", "frame": frame}, stream) == 1
    got = [await asyncio.wait_for(receiver.receive(channel), 10) for _ in range(5)]
    assert [m["offset"] for m in got] == [1, 2, 3, 4, 5]
    assert got[-1]["frame"].endswith(f',"position":"{got[-1]["epoch"]}:5"}}')
    page = await receiver.read_stream(group, Position(got[0]["epoch"], 2), 10)
    assert [offset for offset, _ in page.frames] == [3, 4, 5] and page.top.offset == 5
    owner = topology.master_of(shard_channel(prefix, group))
    slots = {owner.command("CLUSTER", "KEYSLOT", name).strip()
             for name in (shard_channel(prefix, group), *redis_keys(prefix, group))}
    assert len(slots) == 1


async def test_a_slot_moved_to_another_master_keeps_delivering(topology, pair):
    """Resharding: the channel's slot moves while subscribed. The old master unsubscribes the
    channel; the receiver subscribes it on the new one; the sender's first publish there gets
    MOVED and is sent again where redis-py's cluster client says."""
    sender, receiver, channel, prefix = pair
    group = "tc.9.resharded"
    name = shard_channel(prefix, group)
    await receiver.group_add(group, channel)
    assert await sender.group_send(group, {"type": "publish", "n": 0}) == 1
    assert (await asyncio.wait_for(receiver.receive(channel), 10))["n"] == 0

    old = topology.master_of(name)
    new = next(server for server in topology.masters() if server is not old)
    topology.move_slot(name, new)
    # The receiver is subscribed again on the new master (told by the old one's sunsubscribe).
    for _ in range(200):
        if receiver.is_subscribed(group) and "1" in new.command("PUBSUB", "SHARDNUMSUB", name).split():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the receiver did not subscribe on the slot's new master")
    assert await sender.group_send(group, {"type": "publish", "n": 1}) == 1  # MOVED, then re-sent
    assert (await asyncio.wait_for(receiver.receive(channel), 10))["n"] == 1
    assert await sender.group_send(group, {"type": "publish", "n": 2}) == 1  # straight to the new master
    assert (await asyncio.wait_for(receiver.receive(channel), 10))["n"] == 2
    topology.move_slot(name, old)  # as it was, for the other tests


async def test_a_layer_closed_while_re_subscribing_leaves_nothing_running(topology, pair, monkeypatch):
    """A process shutting down while the cluster reshards: the layer is re-subscribing a moved
    channel when it is closed. Python 3.11's ``asyncio.wait_for`` can swallow a cancellation that
    lands as its wait completes; the re-router that missed its cancel then outlived the closed
    layer, spinning on it (warning every 0.1 s) and hanging the event loop's shutdown (seen in CI).
    Closed now means closed: that re-router stops at its next turn."""
    _, receiver, channel, prefix = pair
    group = "tc.9.closing"
    await receiver.group_add(group, channel)
    name = shard_channel(prefix, group)
    old = topology.master_of(name)
    new = next(server for server in topology.masters() if server is not old)

    attempts, stuck = [], asyncio.Event()
    real_subscribe = receiver._subscribe  # noqa: SLF001

    async def subscribe_missing_one_cancel(shard_name: str) -> None:
        if shard_name != name:
            return await real_subscribe(shard_name)
        attempts.append(shard_name)
        try:
            await asyncio.Event().wait()  # the new master's confirmation, still on its way
        except asyncio.CancelledError:
            stuck.set()  # the cancel lost, as wait_for may lose it
        raise ConnectionError("not confirmed")

    monkeypatch.setattr(receiver, "_subscribe", subscribe_missing_one_cancel)
    topology.move_slot(name, new)  # the old master unsubscribes us: the layer re-routes
    try:
        for _ in range(200):
            if attempts:
                break
            await asyncio.sleep(0.05)
        assert attempts, "the layer did not re-subscribe the moved channel"
        await receiver.flush()
        assert stuck.is_set()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task() and not task.done()]
        assert others == []
    finally:
        topology.move_slot(name, old)  # as it was, for the other tests


async def until(check, what: str, timeout: float = 20.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not check():
        if loop.time() - started > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return loop.time() - started


async def test_a_killed_master_fails_publishes_then_delivery_resumes_on_its_replica():
    """Failover: the master of a group's slot dies (SIGKILL) while two brokers publish to it.
    Publishes are refused (503) for a few seconds, never answered 200 and lost; once the cluster
    has promoted the replica, both processes are subscribed there and publishes flow again."""
    topology = ClusterTopology(masters=3, replicas=1).start()
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    got_on_a: list[dict] = []
    a = LayerBroker(ClusterChannelLayer(url=topology.url, prefix=prefix), got_on_a.append, outage=Outage("test"))
    b = LayerBroker(ClusterChannelLayer(url=topology.url, prefix=prefix), lambda message: None, outage=Outage("test"))
    try:
        await a.start()
        await b.start()
        group = "tc.3.failover"
        await a.join(group)
        await until(lambda: b._peers == 2, "B to see both processes subscribed")  # noqa: SLF001
        await b.send(group, {"type": "tc.publish", "n": 0})
        await until(lambda: any(m.get("n") == 0 for m in got_on_a), "a publish to reach A")

        master = topology.master_of(shard_channel(prefix, group))
        topology.kill_master(master)
        accepted, refused, n = [], 0, 1
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        recovered_at = None
        while loop.time() - killed_at < 30:
            try:
                await asyncio.wait_for(b.send(group, {"type": "tc.publish", "n": n}), 5)
                accepted.append(n)
                if recovered_at is None and refused:
                    recovered_at = loop.time()
                if recovered_at is not None and loop.time() - recovered_at > 1:
                    break
            except (DeliveryUnavailable, *UNREACHABLE):  # the HTTP API answers these with 503
                refused += 1
            n += 1
            await asyncio.sleep(0.02)
        assert refused, "publishes to a dead master must be refused"
        assert recovered_at is not None, "publishes never flowed again"
        assert recovered_at - killed_at < 15, f"took {recovered_at - killed_at:.1f} s"
        # Every publish answered OK reached A (the subscriber process), in order.
        await until(lambda: {m.get("n") for m in got_on_a} >= set(accepted), "every accepted publish to reach A")
        order = [m["n"] for m in got_on_a if m.get("n") in set(accepted)]
        assert order == sorted(order)
        assert a.healthy and b.healthy
    finally:
        await a.stop()
        await b.stop()
        await a.layer.flush()
        await b.layer.flush()
        topology.stop()


def test_the_redis_cost_bench_runs(capsys):
    """``python -m bench --only redis_cost`` end to end, small (a smoke test: the numbers are in
    bench/RESULTS.md). Every publish and subscribe costs Redis something, a publish one
    PUBLISH/SPUBLISH on one shard when history is off."""
    from bench import redis_cost

    results = redis_cost.measure(small=True, log=lambda line: None)
    for label, costs in results["per_operation"].items():
        off = costs["publish, history off"]["by_command"]
        assert round(off.get("spublish" if "cluster" in label else "publish", 0)) == 1, (label, off)
        assert costs["subscribe"]["commands"] > 0
    assert set(results["fanout"]) == {"1 Redis", "cluster, 1 shard", "cluster, 3 shards"}
    assert all(row["deliveries_per_s"] > 0 for row in results["fanout"].values())
    assert "| publish, history off |" in redis_cost.table(results)
