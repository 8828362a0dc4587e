"""``manage.py serve --workers 2``: two processes, each with its own node, on one port."""

import asyncio
import signal

import pytest
import redis as redis_client

from tests.support.clients import python_backend
from tests.support.processes import RedisProcess, TabcastProcess, wait_until
from tests.support.raw import RawClient, data_of

pytestmark = pytest.mark.redis


async def test_two_workers_serve_one_port_and_close_sockets_with_4200_on_sigterm():
    redis = RedisProcess().start()
    server = TabcastProcess(redis_url=redis.url, workers=2)
    try:
        await asyncio.to_thread(server.start)
        # One node per worker, each registered in Redis (the second may still be starting).
        nodes = redis_client.Redis.from_url(redis.url)
        await asyncio.to_thread(wait_until, lambda: nodes.zcard(server.env["TABCAST_REDIS_PREFIX"] + ":nodes") == 2, 30, what="both workers")
        nodes.close()

        app = await asyncio.to_thread(server.create_app, "workers")
        clients = [await RawClient.established(server, app["key"]) for _ in range(8)]
        for client in clients:
            assert (await client.subscribe("news"))["event"] == "pusher_internal:subscription_succeeded"
        backend = python_backend(app)
        assert (await asyncio.to_thread(backend.channel_info, "news", ["subscription_count"]))[
            "subscription_count"] == 8
        await asyncio.to_thread(backend.trigger, "news", "hello", {"n": 1})
        for client in clients:
            assert data_of(await client.recv_event("hello")) == {"n": 1}

        server.proc.send_signal(signal.SIGTERM)  # the supervisor passes it on to every worker
        for client in clients:
            assert (await client.closed(timeout=10))[0] == 4200
    finally:
        await asyncio.to_thread(server.stop)
        redis.stop()
