"""A Redis outage in JSON logs (TABCAST_LOG_FORMAT=json): the same handful of lines as in plain
text (tests/scaleout/test_redis_blips.py), each one a JSON object with its fields."""

import asyncio
import json
import time

import pytest

from tests.support.processes import RedisProcess
from tests.support.raw import RawClient

from .conftest import Cluster, on
from .test_redis_blips import OUTAGE_SECONDS, Publisher, collect, log_since, log_size, wait_for

pytestmark = pytest.mark.redis


async def test_a_5_s_redis_outage_under_publishing_load_is_a_handful_of_json_lines():
    redis = RedisProcess().start()
    cluster = Cluster(redis.url)
    try:
        server = cluster.start(TABCAST_LOG_FORMAT="json")
        app = server.create_app("json-outage")
        subscriber = await RawClient.established(server, app["key"])
        assert (await subscriber.subscribe("ticks"))["event"] == "pusher_internal:subscription_succeeded"
        received: set[int] = set()
        collector = asyncio.get_running_loop().create_task(collect(subscriber, "ticks", received))
        publisher = Publisher(on(app, server), "ticks").start()
        try:
            await wait_for(lambda: len(publisher.ok() & received) >= 20, 10, "publishes to be delivered")
            offset = log_size(server)
            down_at = time.monotonic()
            redis.proc.kill()
            redis.proc.wait(5)
            await wait_for(lambda: 503 in publisher.statuses(since=down_at), 10, "publishes to answer 503")
            await asyncio.sleep(OUTAGE_SECONDS)
            await asyncio.to_thread(redis.start)
            up_at = time.monotonic()
            await wait_for(lambda: publisher.first_ok_after(up_at), 10, "publishes to answer 200 again")
            await wait_for(lambda: publisher.first_ok_after(up_at + 1.5), 10, "publishing to go on")
        finally:
            publisher.stop()
            collector.cancel()
        await subscriber.close()
        failed = publisher.statuses(since=down_at).count(503)
        lines = log_since(server, offset)
        whole_log = log_since(server, 0)
    finally:
        cluster.stop()
        redis.stop()

    assert failed > 50, "the outage was under load"
    records = []
    for line in whole_log:  # the whole log, start-up included: JSON only
        record = json.loads(line)
        assert all(record.get(field) for field in ("timestamp", "level", "logger", "event")), line
        records.append(record)
    outage = [json.loads(line) for line in lines]
    print(f"{len(outage)} JSON lines for a {OUTAGE_SECONDS} s outage with {failed} publishes answered 503")
    assert len(outage) < 20, "\n".join(lines)
    assert not [record for record in outage if "exc_info" in record], "no traceback per failed request"
    started = [record for record in outage if record["event"].startswith("Redis outage:")]
    over = [record for record in outage if record["event"].startswith("Redis outage over")]
    assert len(started) == 1 and len(over) == 1, "\n".join(lines)
    assert started[0]["level"] == "WARNING" and started[0]["logger"] == "service.realtime.outage"
    assert "operations failed meanwhile" in over[0]["event"]
