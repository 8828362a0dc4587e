"""A Redis Cluster master dies (SIGKILL) during traffic; its replica takes over.

Two real Tabcast processes: a subscriber on A, publishes through B's HTTP API every ~20 ms to
channels spread over the shards, one of them on the shard that dies. Publishes answer 503 for
a few seconds at most (never 200 and lost), then flow again, without restarting anything;
every publish answered 200 reaches the subscriber, or the subscriber is told
(``tabcast:resumed`` with ``recovered: false``, docs/recovery.md).
"""

import asyncio
import json
import time

import pytest

from service.realtime.channel_names import group_name
from service.realtime.cluster_layer import shard_channel
from tests.support.processes import wait_until
from tests.support.raw import RawClient
from tests.support.redis_topologies import ClusterTopology

from .conftest import Cluster, publish

pytestmark = pytest.mark.redis

STEADY = 3.0  # seconds of publishes all answered 200 that end the run after the failover
MAX_REFUSED_SECONDS = 12.0  # the failover itself (node timeout + election) is ~2-3 s of it
ENV = {"TABCAST_NODE_TTL": "10"}  # longer than the failover: no process is taken for dead meanwhile


async def failover_during_traffic(redis_url: str, channels: list[str], kill, wait_failover) -> dict:
    """Run the scenario; returns what happened (for the assertions and the report)."""
    cluster = Cluster(redis_url)
    a, b = cluster.start(**ENV), cluster.start(**ENV)
    try:
        app = a.create_app("failover")
        on_b = {**app, "port": b.port}
        subscriber = await RawClient.established(a, app["key"])
        for channel in channels:
            assert (await subscriber.subscribe(channel))["event"] == "pusher_internal:subscription_succeeded"
        wait_until(lambda: all(publish(on_b, c, "warm", "0")[0] == 200 for c in channels), 10,
                   what="B's publishes to reach every shard")

        received: dict[str, list[int]] = {channel: [] for channel in channels}
        told: list[dict] = []

        async def receive() -> None:
            while True:
                frame = json.loads(await subscriber.ws.recv())
                if frame.get("event") == "tick":
                    received[frame["channel"]].append(int(json.loads(frame["data"])["n"]))
                elif frame.get("event") == "tabcast:resumed":
                    told.append(frame)

        reader = asyncio.get_running_loop().create_task(receive())
        outcomes: list[tuple[float, str, int, int]] = []  # (time, channel, n, status)

        def traffic(stop_after_kill) -> None:
            n = 0
            while True:
                channel = channels[n % len(channels)]
                status, _, _ = publish(on_b, channel, "tick", json.dumps({"n": n}))
                outcomes.append((time.monotonic(), channel, n, status))
                n += 1
                if stop_after_kill():
                    return
                time.sleep(0.02)

        killed = {}

        def done() -> bool:
            if "at" not in killed:
                return False
            after = [o for o in outcomes if o[0] > killed["at"]]
            refused = [o for o in after if o[3] != 200]
            if not refused:
                return time.monotonic() - killed["at"] > 40  # (the assertions below say what went wrong)
            last_refused = refused[-1][0]
            return time.monotonic() - last_refused > STEADY or time.monotonic() - killed["at"] > 40

        publisher = asyncio.get_running_loop().run_in_executor(None, traffic, done)
        await asyncio.sleep(1.0)
        killed["at"] = time.monotonic()
        dead = await asyncio.to_thread(kill, app["app_id"])
        await publisher
        took_over = await asyncio.to_thread(wait_failover, dead)

        accepted = [(channel, n) for _, channel, n, status in outcomes if status == 200]
        expected = {channel: sorted(n for c, n in accepted if c == channel) for channel in channels}

        def all_arrived() -> bool:
            return all(set(expected[c]) <= set(received[c]) for c in channels)

        deadline = time.monotonic() + 15
        while not all_arrived() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        reader.cancel()
        await subscriber.close()
        after = [o for o in outcomes if o[0] > killed["at"]]
        refused = [o for o in after if o[3] != 200]
        return {
            "statuses": sorted({o[3] for o in outcomes}),
            "refused": len(refused),
            "refused_seconds": (refused[-1][0] - killed["at"]) if refused else 0.0,
            "accepted": len(accepted),
            "missing": {c: sorted(set(expected[c]) - set(received[c])) for c in channels},
            "out_of_order": {c: received[c] != sorted(received[c]) for c in channels},
            "told": told,
            "new_master": took_over.address,
            "logs": (a.log(), b.log()),
        }
    finally:
        cluster.stop()


def check(report: dict) -> None:
    assert set(report["statuses"]) <= {200, 503}, report["statuses"]
    assert report["refused"], "publishes through the dead master must be refused (503), not answered 200"
    assert report["refused_seconds"] < MAX_REFUSED_SECONDS, report["refused_seconds"]
    told_channels = {frame["channel"] for frame in report["told"]
                     if json.loads(frame["data"]).get("recovered") is False}
    for channel, missing in report["missing"].items():
        assert not missing or channel in told_channels, (
            f"{len(missing)} publishes answered 200 on {channel} never reached the subscriber and it was not told: "
            f"{missing[:10]}")
    for channel, disordered in report["out_of_order"].items():
        assert not disordered, channel
    for log in report["logs"]:
        assert "Traceback" not in log, log


def test_a_killed_cluster_master_is_replaced_and_publishes_flow_again():
    topology = ClusterTopology(masters=3, replicas=1).start()
    try:
        channels = ["orders", "news", "chat", "prices"]

        def kill(app_id: int):
            # The master of the first channel's shard. A group channel's hash tag is the group
            # name alone, so any prefix finds the same slot.
            return topology.kill_master(topology.master_of(shard_channel("any", group_name(app_id, channels[0]))))

        report = asyncio.run(failover_during_traffic(topology.url, channels, kill, topology.wait_failover))
        print(f"cluster failover: {report['refused']} publishes refused over {report['refused_seconds']:.1f} s, "
              f"{report['accepted']} accepted ({sum(map(len, report['missing'].values()))} of them not received, "
              f"{len(report['told'])} tabcast:resumed), new master {report['new_master']}")
        check(report)
    finally:
        topology.stop()
