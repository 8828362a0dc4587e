"""What Redis does per publish and per subscribe, one Redis vs a Redis Cluster, and how fan-out
through the channel layer scales with 1 and 3 shards (``python -m bench --only redis_cost``).

Per operation (a real ``manage.py serve`` process, its Redis or cluster to itself):

* **subscribe**: sockets each subscribing a channel no other socket has (so the process joins
  the channel's group: SUBSCRIBE / SSUBSCRIBE, and counts it in the shared state);
* **publish**: signed HTTP publishes to a channel with one subscriber, with the app's history on
  (the default: one script appends and publishes) and off (PUBLISH / SPUBLISH alone).

Redis commands and bytes are ``INFO commandstats`` calls and ``total_net_input_bytes`` /
``total_net_output_bytes`` deltas summed over every redis-server of the topology, minus what
the same process does idle over the same time (heartbeats, probes, metering flushes).

Fan-out: two "processes" (layer instances) join 500 groups each; a third publishes 20,000
messages to them (200 in flight): deliveries/s end to end, and the CPU the redis-servers and
this Python process (publisher and receivers) used per delivery.

    .venv/bin/python -m bench.redis_cost
"""

import asyncio
import base64
import http.client
import json
import os
import re
import time
import uuid

from tests.support.processes import RedisProcess, TabcastProcess
from tests.support.raw import RawClient
from tests.support.redis_topologies import ClusterTopology, redis_command

from . import procstats
from .servers import TABCAST_BENCH_ENV

FULL = {"subscribes": 300, "publishes": 1500, "fanout_messages": 20_000}
SMALL = {"subscribes": 30, "publishes": 150, "fanout_messages": 2000}
PUBLISH_THREADS = 4
FANOUT_GROUPS, FANOUT_IN_FLIGHT, FANOUT_RECEIVERS = 500, 200, 2


class Topology:
    """One redis-server, or a cluster of ``shards`` masters; ``ports`` for INFO."""

    def __init__(self, shards: int | None):
        self.shards = shards
        self.label = "1 Redis" if shards is None else f"cluster, {shards} shard{'s' if shards > 1 else ''}"

    def __enter__(self) -> "Topology":
        if self.shards is None:
            self.server = RedisProcess().start()
            self.url, self.servers = self.server.url, [self.server]
        else:
            self.server = ClusterTopology(masters=self.shards).start()
            self.url, self.servers = self.server.url, self.server.servers
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def stats(self) -> dict:
        """Summed over the servers: calls per command, bytes in and out."""
        calls: dict[str, int] = {}
        bytes_in = bytes_out = 0
        for server in self.servers:
            for name, count in re.findall(r"cmdstat_([a-z|]+):calls=(\d+)", redis_command(server.port, "INFO", "commandstats")):
                calls[name] = calls.get(name, 0) + int(count)
            stats = redis_command(server.port, "INFO", "stats")
            bytes_in += int(re.search(r"total_net_input_bytes:(\d+)", stats)[1])
            bytes_out += int(re.search(r"total_net_output_bytes:(\d+)", stats)[1])
        return {"calls": calls, "in": bytes_in, "out": bytes_out}

    def pids(self) -> list[int]:
        return [server.proc.pid for server in self.servers]


def _delta(after: dict, before: dict) -> dict:
    calls = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
    return {"calls": {k: v for k, v in calls.items() if v}, "in": after["in"] - before["in"],
            "out": after["out"] - before["out"]}


def _per_op(work: dict, idle: dict, idle_seconds: float, seconds: float, count: int) -> dict:
    """(work - idle scaled to the work's duration) / count."""
    scale = seconds / idle_seconds
    calls = {k: (v - idle["calls"].get(k, 0) * scale) / count for k, v in work["calls"].items()}
    calls = {k: v for k, v in calls.items() if v > 0.005}
    return {"commands": sum(calls.values()), "by_command": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
            "bytes_in": max(work["in"] - idle["in"] * scale, 0) / count,
            "bytes_out": max(work["out"] - idle["out"] * scale, 0) / count}


def _publisher(server: TabcastProcess, app: dict, channel: str, count: int) -> None:
    basic = base64.b64encode(f"{app['key']}:{app['secret']}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = json.dumps({"channel": channel, "event": "tick", "data": "x" * 100})
    for _ in range(count):
        conn.request("POST", "/publish", body, {"Content-Type": "application/json", "Authorization": f"Basic {basic}"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"publish answered {response.status}")
    conn.close()


def per_operation(topology: Topology, sizes: dict, log) -> dict:
    server = TabcastProcess(redis_url=topology.url, extra_env={**TABCAST_BENCH_ENV, "TABCAST_NODE_TTL": "30"})
    server.start()
    try:
        app = server.create_app("redis-cost")

        async def scenario() -> dict:
            warm = await RawClient.established(server, app["key"])
            await warm.subscribe("warm")
            await asyncio.to_thread(_publisher, server, app, "warm", 20)
            # Idle: what the process does by itself (heartbeats, probes, flushes) over a while.
            before, started = topology.stats(), time.monotonic()
            await asyncio.sleep(3.0)
            idle, idle_seconds = _delta(topology.stats(), before), time.monotonic() - started

            clients = [await RawClient.established(server, app["key"]) for _ in range(sizes["subscribes"])]
            before, started = topology.stats(), time.monotonic()
            for i, client in enumerate(clients):
                await client.subscribe(f"sub-{i}")
            subscribe = _per_op(_delta(topology.stats(), before), idle, idle_seconds, time.monotonic() - started,
                                len(clients))

            results = {"subscribe": subscribe}
            for history, label in ((True, "publish, history on"), (False, "publish, history off")):
                if not history:
                    await asyncio.to_thread(server.update_app, app["app_id"], history_size=0)
                    # (a process caches app settings for TABCAST_APP_CACHE_SECONDS)
                    await asyncio.sleep(float(TABCAST_BENCH_ENV.get("TABCAST_APP_CACHE_SECONDS", 0)) + 0.5)
                before, started = topology.stats(), time.monotonic()
                per_thread = sizes["publishes"] // PUBLISH_THREADS
                await asyncio.gather(*(asyncio.to_thread(_publisher, server, app, "sub-0", per_thread)
                                       for _ in range(PUBLISH_THREADS)))
                results[label] = _per_op(_delta(topology.stats(), before), idle, idle_seconds,
                                         time.monotonic() - started, per_thread * PUBLISH_THREADS)
            for client in (warm, *clients):
                await client.close()
            return results

        results = asyncio.run(scenario())
        for what, cost in results.items():
            top = ", ".join(f"{k} {v:.2f}" for k, v in list(cost["by_command"].items())[:4])
            log(f"  {topology.label}: {what}: {cost['commands']:.2f} commands ({top}), "
                f"{cost['bytes_in']:.0f} B in, {cost['bytes_out']:.0f} B out")
        return results
    finally:
        server.stop()


async def send_round_robin(sender, groups: list[str], frame: str, count: int, in_flight: int) -> None:
    """Send ``count`` ``tc.publish`` messages of ``frame`` through the LayerBroker ``sender``, message
    i to ``groups[i % len(groups)]``, at most ``in_flight`` sends at once (also ``bench/layers.py``)."""
    limit = asyncio.Semaphore(in_flight)

    async def send(i: int) -> None:
        async with limit:
            await sender.send(groups[i % len(groups)], {"type": "tc.publish", "frame": frame, "i": i})

    await asyncio.gather(*(send(i) for i in range(count)))


async def _fanout(url: str, messages: int) -> dict:
    from service.realtime.broker import LayerBroker
    from service.realtime.outage import Outage

    prefix = f"bench-{uuid.uuid4().hex[:6]}"

    def layer():
        if url.startswith("redis+cluster://"):
            from service.realtime.cluster_layer import ClusterChannelLayer

            return ClusterChannelLayer(url=url, prefix=prefix)
        from service.realtime.redis_layer import PipelinedPubSubChannelLayer

        return PipelinedPubSubChannelLayer(hosts=[{"address": url, "socket_timeout": None, "max_connections": 1000}],
                                           prefix=prefix)

    got = asyncio.Event()
    delivered = 0
    total = messages * FANOUT_RECEIVERS

    def on_message(message: dict) -> None:
        nonlocal delivered
        delivered += 1
        if delivered >= total:
            got.set()

    receivers = [LayerBroker(layer(), on_message, outage=Outage("bench")) for _ in range(FANOUT_RECEIVERS)]
    sender = LayerBroker(layer(), lambda message: None, outage=Outage("bench"))
    for broker in (*receivers, sender):
        await broker.start()
    groups = [f"tc.bench.{i}" for i in range(FANOUT_GROUPS)]
    for broker in receivers:
        for group in groups:
            await broker.join(group)
    frame = '{"event":"tick","channel":"c","data":"' + "x" * 100 + '"}'
    started = time.perf_counter()
    await send_round_robin(sender, groups, frame, messages, FANOUT_IN_FLIGHT)
    await asyncio.wait_for(got.wait(), 120)
    seconds = time.perf_counter() - started
    for broker in (*receivers, sender):
        await broker.stop()
        await broker.layer.flush()
    return {"seconds": seconds, "deliveries": total}


def fanout(topology: Topology, sizes: dict, log) -> dict:
    redis_before = procstats.cpu_seconds(topology.pids())
    own_before = time.process_time()
    result = asyncio.run(_fanout(topology.url, sizes["fanout_messages"]))
    redis_cpu = procstats.cpu_seconds(topology.pids()) - redis_before
    own_cpu = time.process_time() - own_before
    rate = result["deliveries"] / result["seconds"]
    out = {"deliveries_per_s": rate, "redis_us": redis_cpu * 1e6 / result["deliveries"],
           "python_us": own_cpu * 1e6 / result["deliveries"], "redis_cpu": redis_cpu / result["seconds"]}
    log(f"  {topology.label}: fan-out {rate:,.0f} deliveries/s; redis-server CPU {out['redis_us']:.1f} µs and "
        f"publisher + receivers {out['python_us']:.1f} µs per delivery")
    return out


def measure(small: bool = False, log=print) -> dict:
    sizes = SMALL if small else FULL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "service.settings")
    import django

    django.setup()
    results: dict = {"per_operation": {}, "fanout": {}}
    for shards in (None, 3):
        with Topology(shards) as topology:
            results["per_operation"][topology.label] = per_operation(topology, sizes, log)
    for shards in (None, 1, 3):
        with Topology(shards) as topology:
            results["fanout"][topology.label] = fanout(topology, sizes, log)
    return results


def table(results: dict) -> str:
    """The Markdown of the redis_cost rows."""
    per_op = results["per_operation"]
    labels = list(per_op)
    ops = list(next(iter(per_op.values())))
    lines = ["| Redis work per operation | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for op in ops:
        cells = []
        for label in labels:
            cost = per_op[label][op]
            top = ", ".join(f"{k} {v:.2f}" for k, v in list(cost["by_command"].items())[:3])
            cells.append(f"{cost['commands']:.2f} commands ({top}); {cost['bytes_in']:,.0f} B in, "
                         f"{cost['bytes_out']:,.0f} B out")
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    fan = results["fanout"]
    lines += ["", f"| channel layer fan-out ({FANOUT_RECEIVERS} receiving processes, {FANOUT_GROUPS} groups) | "
              "deliveries/s | redis-server CPU per delivery | Python CPU per delivery | redis-server CPU |",
              "|---|---|---|---|---|"]
    for label, row in fan.items():
        lines.append(f"| {label} | {row['deliveries_per_s']:,.0f} | {row['redis_us']:.1f} µs | {row['python_us']:.1f} µs "
                     f"| {row['redis_cpu']:.0%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    measured = measure(small="--small" in sys.argv, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(measured))
    print(json.dumps(measured, indent=1))
