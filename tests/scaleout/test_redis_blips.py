"""Redis blips under publishing load, against a real server process and a real redis-server.

What a publisher may rely on: a publish answered 200 reaches the subscribers; while delivery
does not work (Redis away, or back but this process not re-subscribed yet) publishes answer
503. Recovery is noticed within about a second, and the server log says "outage" once, not
once per request.
"""

import asyncio
import json
import os
import signal
import threading
import time

import pytest

from service.realtime import signatures
from tests.support.processes import TabcastProcess, wait_until
from tests.support.raw import RawClient, data_of

from .conftest import Cluster, on, publish

pytestmark = pytest.mark.redis

OUTAGE_SECONDS = 5


@pytest.fixture
def blip(restartable):
    return restartable


class Publisher:
    """Publishes numbered events continuously from threads; remembers every answer."""

    def __init__(self, app: dict, channel: str, threads: int = 2):
        self.app, self.channel = app, channel
        self.answers: list[tuple[int, int, float]] = []  # (seq, status, monotonic time of the answer)
        self._seq = iter(range(1, 10**9))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> "Publisher":
        for thread in self._threads:
            thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                seq = next(self._seq)
            try:
                status, _, _ = publish(self.app, self.channel, "tick", {"n": seq})
            except OSError:
                status = 0  # no answer at all (connection refused, timeout): never acceptable
            with self._lock:
                self.answers.append((seq, status, time.monotonic()))
            self._stop.wait(0.005)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def ok(self) -> set[int]:
        with self._lock:
            return {seq for seq, status, _ in self.answers if status == 200}

    def statuses(self, since: float = 0.0) -> list[int]:
        with self._lock:
            return [status for _, status, at in self.answers if at >= since]

    def first_ok_after(self, moment: float) -> float | None:
        with self._lock:
            return next((at for _, status, at in self.answers if status == 200 and at >= moment), None)


async def collect(client: RawClient, channel: str, received: set[int]) -> None:
    """Record the sequence number of every tick the subscriber receives."""
    while True:
        frame = json.loads(await client.ws.recv())
        if frame.get("event") == "tick" and frame.get("channel") == channel:
            received.add(data_of(frame)["n"])


def log_size(server: TabcastProcess) -> int:
    return os.path.getsize(server.log_path)


def log_since(server: TabcastProcess, offset: int) -> list[str]:
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()


async def wait_for(check, timeout: float, what: str) -> None:
    await asyncio.to_thread(wait_until, check, timeout, 0.02, what)


@pytest.mark.parametrize(("how", "via"), [("kill", "a"), ("stop", "a"), ("kill", "b")])
async def test_every_publish_answered_200_is_delivered_across_a_redis_blip(blip, how, via):
    """Kill Redis (or freeze it with SIGSTOP) while publishing; it comes back empty (or thawed).

    The subscriber is on process A; publishes go to A, or to B (then B must also wait for A
    to be subscribed again before it answers 200).
    """
    app = blip.a.create_app("blip")
    subscriber = await RawClient.established(blip.a, app["key"])
    assert (await subscriber.subscribe("ticks"))["event"] == "pusher_internal:subscription_succeeded"
    received: set[int] = set()
    collector = asyncio.get_running_loop().create_task(collect(subscriber, "ticks", received))
    publisher = Publisher(on(app, getattr(blip, via)), "ticks").start()
    try:
        await wait_for(lambda: len(publisher.ok() & received) >= 20, 10, "publishes to be delivered")

        log_offsets = {server: log_size(server) for server in (blip.a, blip.b)}
        down_at = time.monotonic()
        if how == "kill":
            blip.redis.proc.kill()
            blip.redis.proc.wait(5)
        else:
            os.kill(blip.redis.proc.pid, signal.SIGSTOP)
        await wait_for(lambda: 503 in publisher.statuses(since=down_at), 10, "publishes to answer 503")
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage lasts; publishes keep coming
        assert set(publisher.statuses(since=down_at + 4)) == {503}, "fast 503s while delivery does not work"

        if how == "kill":
            await asyncio.to_thread(blip.redis.start)  # same port, empty: every subscription is gone
        else:
            os.kill(blip.redis.proc.pid, signal.SIGCONT)
        up_at = time.monotonic()
        await wait_for(lambda: publisher.first_ok_after(up_at), 10, "publishes to answer 200 again")
        recovered_in = publisher.first_ok_after(up_at) - up_at
        await wait_for(lambda: publisher.first_ok_after(up_at + 1.5), 10, "publishing to go on after the recovery")
        logs = {server: log_since(server, offset) for server, offset in log_offsets.items()}
    finally:
        publisher.stop()
    try:
        # Every publish answered 200 reaches the subscriber (the last ones may still be on their way).
        await wait_for(lambda: publisher.ok() <= received, 10, "every publish answered 200 to be delivered")
    except TimeoutError:
        lost = sorted(publisher.ok() - received)
        pytest.fail(f"{len(lost)} publishes answered 200 were never delivered: {lost[:20]}")
    finally:
        collector.cancel()
        await subscriber.close()

    print(f"{how} via {via}: first 200 {recovered_in:.2f} s after Redis was back; {len(publisher.ok())} answered "
          f"200, {publisher.statuses().count(503)} answered 503; log lines: {[len(log) for log in logs.values()]}")
    assert set(publisher.statuses()) <= {200, 503}
    assert recovered_in < 2.0, f"recovery noticed {recovered_in:.2f} s after Redis was back"
    for outage_log in logs.values():
        assert not [line for line in outage_log if "Traceback" in line], "\n".join(outage_log[:60])
        assert len(outage_log) < 20, f"{len(outage_log)} log lines during the outage:\n" + "\n".join(outage_log[:60])
        # Said once when it starts and once when it ends, not per failed request.
        assert len([line for line in outage_log if "Redis outage:" in line]) == 1, "\n".join(outage_log)
        assert len([line for line in outage_log if "Redis outage over" in line]) == 1, "\n".join(outage_log)


def test_outage_log_is_one_line_at_start_a_summary_every_30_s_and_one_line_at_the_end(monkeypatch, caplog):
    """The reporter the broker, the state and the API share (a 30 s outage is too long for the test above)."""
    from service.realtime import outage as outage_module

    now = [1000.0]
    monkeypatch.setattr(outage_module.time, "monotonic", lambda: now[0])
    outage = outage_module.Outage("Redis")
    caplog.set_level("WARNING", logger=outage_module.__name__)
    failure = ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    outage.lost("delivery", failure)
    outage.lost("state", failure)
    for second in range(65):  # 65 s of failing requests, 10 per second
        now[0] = 1000.0 + second
        for _ in range(10):
            assert outage.absorb(failure) is True
        outage.tick()
    outage.back("delivery")
    outage.back("state")
    assert outage.absorb(ValueError("a bug")) is False  # not a backend failure: the caller logs it

    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 4, lines
    assert lines[0].startswith("Redis outage: delivery cannot reach it (ConnectionError: Error 111")
    assert lines[1] == "Redis still unreachable after 30 s (delivery, state): 300 operations failed in the last 30 s"
    assert lines[2] == "Redis still unreachable after 60 s (delivery, state): 300 operations failed in the last 30 s"
    assert lines[3] == "Redis outage over after 64.0 s (state back last); 650 operations failed meanwhile"
    assert not [record for record in caplog.records if record.exc_info]


async def join_presence(client: RawClient, app: dict, channel: str, user_id: str) -> dict:
    channel_data = json.dumps({"user_id": user_id, "user_info": {}})
    auth = f"{app['key']}:{signatures.sign(app['secret'], f'{client.socket_id}:{channel}:{channel_data}')}"
    await client.send({"event": "pusher:subscribe",
                       "data": {"channel": channel, "auth": auth, "channel_data": channel_data}})
    return await client.recv_event("pusher_internal:subscription_succeeded", timeout=20)


async def test_a_one_connection_pool_under_load_is_not_an_outage(redis_url):
    """Two processes whose state backend has a single Redis connection each; 30 sockets of one user
    join a presence channel at once on both. Callers wait for the connection: member_added once,
    and nothing in the log about Redis being away."""
    cluster = Cluster(redis_url)
    a = cluster.start(TABCAST_REDIS_POOL_SIZE="1")
    b = cluster.start(TABCAST_REDIS_POOL_SIZE="1")
    clients: list[RawClient] = []
    try:
        app = a.create_app("pool")
        observer = await RawClient.established(a, app["key"])
        clients.append(observer)
        await join_presence(observer, app, "presence-room", "observer")
        offsets = {server: log_size(server) for server in (a, b)}

        clients += await asyncio.gather(*(RawClient.established(server, app["key"]) for server in [a, b] * 15))
        await asyncio.gather(*(join_presence(tab, app, "presence-room", "u") for tab in clients[1:]))
        status, _, _ = await asyncio.to_thread(publish, on(app, b), "presence-room", "marker", {})
        assert status == 200
        added = []
        while (frame := await observer.recv(timeout=20))["event"] != "marker":
            if frame["event"] == "pusher_internal:member_added":
                added.append(data_of(frame)["user_id"])
        assert added == ["u"]
        for server, offset in offsets.items():
            assert not [line for line in log_since(server, offset)
                        if "Redis outage" in line or "Redis operation failed" in line or "Traceback" in line]
    finally:
        for client in clients:
            await client.close()
        cluster.stop()
