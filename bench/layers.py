"""Measure Tabcast's broker on channels_redis layers (numbers in bench/RESULTS.md).

Tabcast's pipelined pub/sub layer (``service/realtime/redis_layer.py``), channels_redis'
``RedisPubSubChannelLayer`` it extends, and the list-based ``RedisChannelLayer``.

    .venv/bin/python -m bench.layers [redis_url]   (default: a throwaway redis-server)

Two LayerBrokers on separate layer instances (two "processes" worth of connections) on one
Redis: the receiver joins 1,000 groups, the sender publishes to them. Reports end-to-end
throughput (pipelined sends), round-trip latency (one message at a time) and join cost.
"""

import asyncio
import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "service.settings")

import django  # noqa: E402

django.setup()

from channels_redis.core import RedisChannelLayer  # noqa: E402
from channels_redis.pubsub import RedisPubSubChannelLayer  # noqa: E402

from bench.redis_cost import send_round_robin  # noqa: E402
from service.realtime.broker import LayerBroker  # noqa: E402
from service.realtime.redis_layer import PipelinedPubSubChannelLayer  # noqa: E402

GROUPS, MESSAGES, ROUND_TRIPS, CONCURRENCY = 1000, 5000, 500, 50


def make_layer(kind: str, url: str):
    hosts = [{"address": url, "socket_timeout": None, "max_connections": 1000}]
    if kind == "pipelined":
        return PipelinedPubSubChannelLayer(hosts=hosts, prefix="measure")
    if kind == "pubsub":
        return RedisPubSubChannelLayer(hosts=hosts, prefix="measure")
    return RedisChannelLayer(hosts=hosts, prefix="measure", capacity=100_000, expiry=30)


async def measure(kind: str, url: str) -> dict:
    received = asyncio.Queue()
    receiver = LayerBroker(make_layer(kind, url), received.put_nowait)
    sender = LayerBroker(make_layer(kind, url), lambda message: None)
    await receiver.start()
    await sender.start()
    groups = [f"tc.measure.{i}" for i in range(GROUPS)]
    started = time.perf_counter()
    for group in groups:
        await receiver.join(group)
    join_ms = (time.perf_counter() - started) * 1000 / GROUPS

    frame = '{"event":"tick","channel":"c","data":"' + "x" * 150 + '"}'
    started = time.perf_counter()
    await send_round_robin(sender, groups, frame, MESSAGES, CONCURRENCY)
    for _ in range(MESSAGES):
        await received.get()
    throughput = MESSAGES / (time.perf_counter() - started)

    latencies = []
    for i in range(ROUND_TRIPS):
        sent = time.perf_counter()
        await sender.send(groups[i % GROUPS], {"type": "tc.publish", "frame": frame, "i": i})
        await received.get()
        latencies.append((time.perf_counter() - sent) * 1000)
    latencies.sort()
    for group in groups:
        await receiver.leave(group)
    await receiver.stop()
    await sender.stop()
    return {"join_ms": join_ms, "msgs_per_s": throughput, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1]}


async def main(url: str) -> None:
    for kind in ("pipelined", "pubsub", "core"):
        result = await measure(kind, url)
        print(f"{kind:9} join {result['join_ms']:.2f} ms/group | {result['msgs_per_s']:,.0f} msgs/s end to end | "
              f"round trip p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1]))
    else:
        from tests.support.processes import RedisProcess

        redis = RedisProcess().start()
        try:
            asyncio.run(main(redis.url))
        finally:
            redis.stop()
