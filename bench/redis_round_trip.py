"""What one publish round trip to Redis costs the client and the server, on a redis-server of its
own (``python -m bench.redis_round_trip``).

- Client CPU per round trip, one PUBLISH at a time: through redis-py's pipeline object (what the
  layers used before) against ``PublishBatches.execute`` (what they use now), alternating rounds.
- redis-server CPU per command (``INFO commandstats``): PUBLISH against the history script
  (``streams.APPEND_AND_PUBLISH``), in batches of 100.
"""

import asyncio
import statistics
import time

import msgpack
from redis import asyncio as aioredis

from service.realtime import streams
from service.realtime.publish_batches import APPEND_AND_PUBLISH_SHA, PublishBatches
from tests.support.processes import RedisProcess

ROUND_TRIPS = 3000
MESSAGE = {"type": "tc.publish", "app": 1, "channel": "c", "except": None}
FRAME = '{"event":"bench","channel":"c","data":"' + "x" * 100 + '"}'


async def measure(url: str) -> dict:
    client = aioredis.Redis.from_url(url)
    batches = PublishBatches(lambda connection: None, msgpack.packb, "bench")
    payload = msgpack.packb({**MESSAGE, "frame": FRAME})

    async def through_pipeline() -> None:
        pipeline = client.pipeline(transaction=False)
        pipeline.publish("c", payload)
        await pipeline.execute(raise_on_error=False)

    async def through_execute() -> None:
        await batches.execute(client, [("c", payload, None)])

    cpu = {"pipeline": [], "execute": []}
    for _ in range(5):
        for name, round_trip in (("pipeline", through_pipeline), ("execute", through_execute)):
            started = time.thread_time()
            for _ in range(ROUND_TRIPS):
                await round_trip()
            cpu[name].append((time.thread_time() - started) / ROUND_TRIPS * 1e6)

    await client.script_load(streams.APPEND_AND_PUBLISH)
    groups = [f"tc.1.g{i}" for i in range(100)]
    recorded = [(*streams.fixed_args("bench", group, streams.Stream(group, 100, 120), "PUBLISH", "c"), FRAME[:-1],
                 streams.script_message(msgpack.packb(MESSAGE))) for group in groups]
    await client.config_resetstat()
    for _ in range(200):
        pipeline = client.pipeline(transaction=False)
        for args in recorded:
            pipeline.evalsha(APPEND_AND_PUBLISH_SHA, 2, *args)
            pipeline.publish("c", payload)
        await pipeline.execute()
    stats = await client.info("commandstats")
    await client.aclose()
    return {"client_us": {name: statistics.median(values) for name, values in cpu.items()},
            "server_us": {"PUBLISH": stats["cmdstat_publish"]["usec_per_call"],
                          "APPEND_AND_PUBLISH": stats["cmdstat_evalsha"]["usec_per_call"]}}


def main() -> None:
    server = RedisProcess().start()
    try:
        result = asyncio.run(measure(server.url))
    finally:
        server.stop()
    client, redis = result["client_us"], result["server_us"]
    print("| one publish round trip | µs |")
    print("|---|---|")
    print(f"| client CPU, redis-py pipeline (median of 5 x {ROUND_TRIPS:,}) | {client['pipeline']:.1f} |")
    print(f"| client CPU, PublishBatches.execute | {client['execute']:.1f} |")
    print(f"| redis-server per PUBLISH (batches of 100) | {redis['PUBLISH']:.2f} |")
    print(f"| redis-server per APPEND_AND_PUBLISH (batches of 100) | {redis['APPEND_AND_PUBLISH']:.2f} |")


if __name__ == "__main__":
    main()
