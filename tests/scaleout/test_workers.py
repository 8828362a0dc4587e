"""``manage.py serve --workers 2``: two processes, each with its own node, on one port."""

import asyncio
import os
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
        await asyncio.to_thread(wait_until, lambda: nodes.zcard(server.env["TABCAST_REDIS_PREFIX"] + ":{cluster}:nodes") == 2, 30, what="both workers")
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


def _sockets_per_node(redis_url: str, prefix: str, app_id: int) -> dict[str, int]:
    """Open sockets of the app on each node, as the nodes record them in Redis."""
    client = redis_client.Redis.from_url(redis_url, decode_responses=True)
    try:
        return {node: int(client.hget(f"{prefix}:{{{app_id}}}:conns:{node}", "sockets") or 0)
                for node in client.zrange(f"{prefix}:{{cluster}}:nodes", 0, -1)}
    finally:
        client.close()


async def test_connections_are_spread_over_the_workers_and_a_dead_workers_share_is_served_again():
    redis = RedisProcess().start()
    server = TabcastProcess(redis_url=redis.url, workers=2)
    prefix = server.env["TABCAST_REDIS_PREFIX"]
    try:
        await asyncio.to_thread(server.start)
        nodes = redis_client.Redis.from_url(redis.url)
        await asyncio.to_thread(wait_until, lambda: nodes.zcard(prefix + ":{cluster}:nodes") == 2, 30, what="both workers")
        nodes.close()
        app = await asyncio.to_thread(server.create_app, "spread")

        # A burst of connects, as after a deploy: each worker gets a share (each listens on its
        # own SO_REUSEPORT socket; on one shared socket the first to wake could take them all).
        clients = await asyncio.gather(*(RawClient.established(server, app["key"]) for _ in range(40)))
        counts = {}

        def all_counted() -> bool:
            counts.update(_sockets_per_node(redis.url, prefix, app["app_id"]))
            return sum(counts.values()) == 40

        await asyncio.to_thread(wait_until, all_counted, 10, what="40 sockets counted in Redis")
        assert len(counts) == 2 and min(counts.values()) > 0, counts

        # kill -9 one worker: the supervisor starts another, and every new connect is served
        # meanwhile (none is handed to the dead worker's socket).
        workers = _workers(server.proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        # Gone (or a zombie the supervisor has yet to reap): its socket is closed.
        await asyncio.to_thread(wait_until, lambda: _exited(workers[0]), 10, what="the killed worker to exit")
        for client in clients:
            await client.close()
        more = [await RawClient.established(server, app["key"]) for _ in range(20)]
        for client in more:
            await client.close()
    finally:
        await asyncio.to_thread(server.stop)
        redis.stop()


def _workers(pid: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        pids = [int(child) for child in children.read().split()]
    return [child for child in pids if b"spawn_main" in open(f"/proc/{child}/cmdline", "rb").read()]


def _exited(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True
