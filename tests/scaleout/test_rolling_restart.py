"""Deploys that lose nothing (issue 11, section 2): SIGTERM drains, and a rolling restart of two
``serve --reuse-port`` processes on one port under continuous publishing.

With recovery on (docs/recovery.md), nobody misses a message: each raw socket resumes from the
last position it saw and must end up with every publish answered 200 exactly once.
"""

import asyncio
import base64
import http.client
import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis as redis_client
import websockets

from tests.scaleout.conftest import Cluster
from tests.support.clients import PusherJs
from tests.support.processes import PYTHON, ROOT, TabcastProcess, free_port, wait_until
from tests.support.raw import RawClient, data_of

pytestmark = pytest.mark.redis

DRAIN = 4.0  # TABCAST_DRAIN_SECONDS in these tests


# --- processes -------------------------------------------------------------------------------


def listening_pids(port: int) -> set[int]:
    """Pids of the processes holding a listening TCP socket on ``port`` (each SO_REUSEPORT one)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(fields[9])
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    pids.add(int(pid))
                    break
        except OSError:
            continue
    return pids


class SharedPortProcess(TabcastProcess):
    """``serve --reuse-port``: one of several separately started servers on the same port.

    Ready once *its* pid listens on the port (a /healthz probe could be answered by a sibling).
    """

    def start(self, migrate: bool = True) -> "SharedPortProcess":
        if migrate:
            self.migrate()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "manage.py", "serve", "--port", str(self.port), "--reuse-port"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(self._listening, 30, what=f"Tabcast pid {self.proc.pid} listening on {self.port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"Tabcast did not start:\n{self.log()}") from None
        return self

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"Tabcast exited with {self.proc.returncode}:\n{self.log()}")
        return self.proc.pid in listening_pids(self.port)

    def terminate(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)


def start_shared(cluster: Cluster, port: int, **env) -> SharedPortProcess:
    process = SharedPortProcess(redis_url=cluster.redis_url, var_dir=cluster.var_dir, port=port,
                                extra_env={"TABCAST_NODE_TTL": "3", "TABCAST_DRAIN_SECONDS": str(DRAIN), **env})
    cluster.processes.append(process.start(migrate=len(cluster.processes) == 0))
    return process


# --- clients ---------------------------------------------------------------------------------


def publish_request(app: dict, channel: str, seq: int) -> tuple[bytes, dict]:
    token = base64.b64encode(f"{app['key']}:{app['secret']}".encode()).decode()
    body = json.dumps({"channel": channel, "event": "seq", "data": {"seq": seq}}).encode()
    return body, {"Content-Type": "application/json", "Authorization": f"Basic {token}"}


class Publisher(threading.Thread):
    """Publishes sequence-numbered events over keep-alive HTTP as a publisher library would:
    a 503 is retried after its Retry-After, a refused connect is retried (nothing was sent), and
    ``Connection: close`` makes the next publish open a new connection. Every answer is recorded;
    an error after the request went out (reset, timeout, connection closed without an answer) is
    "unanswered": the publisher cannot know whether it was delivered."""

    def __init__(self, app: dict, channel: str, counter, lock):
        super().__init__(daemon=True)
        self.app, self.channel, self.counter, self.lock = app, channel, counter, lock
        self.stopping = threading.Event()
        self.outcomes: list[tuple[float, int, str]] = []  # (time, seq, "200" | "503" | "refused" | "unanswered: ...")
        self.ok: set[int] = set()

    def run(self) -> None:
        conn = None
        while not self.stopping.is_set():
            with self.lock:
                seq = next(self.counter)
            for _ in range(100):
                if conn is None:
                    conn = http.client.HTTPConnection(self.app["host"], self.app["port"], timeout=10)
                    try:
                        conn.connect()
                    except OSError as exc:
                        self.outcomes.append((time.monotonic(), seq, f"refused: {exc!r}"))
                        conn = None
                        time.sleep(0.05)
                        continue
                body, headers = publish_request(self.app, self.channel, seq)
                try:
                    conn.request("POST", "/publish", body, headers)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    self.outcomes.append((time.monotonic(), seq, f"unanswered: {exc!r}"))
                    conn.close()
                    conn = None
                    continue
                self.outcomes.append((time.monotonic(), seq, str(response.status)))
                if response.will_close:
                    conn.close()
                    conn = None
                if response.status == 200:
                    self.ok.add(seq)
                    break
                if response.status != 503:
                    break  # recorded; the assertions report it
                time.sleep(min(float(response.headers.get("Retry-After") or 1), 1))
            time.sleep(0.01)
        if conn is not None:
            conn.close()


class Tab:
    """A raw Pusher socket that, like pusher-js, reconnects at once when closed with 4200, and, like
    the SDK, resumes from the last position it saw (docs/recovery.md).

    Records (time, what, detail): "connected", "subscribed", "told" (pusher:error code), "closed"
    (close code), "resumed" (its data); per connection, when it was subscribed and closed and every
    ``seq`` it got; and every ``seq`` over all its connections, in arrival order (``received``)."""

    def __init__(self, url_holder, key: str, channel: str):
        self.server, self.key, self.channel = url_holder, key, channel
        self.log: list[tuple[float, str, object]] = []
        self.connections: list[dict] = []  # {"subscribed": time, "closed": time, "seqs": set}
        self.received: list[int] = []
        self.position: str | None = None
        self.stopping = False
        self.task: asyncio.Task | None = None

    def start(self) -> "Tab":
        self.task = asyncio.get_running_loop().create_task(self.run())
        return self

    async def run(self) -> None:
        while not self.stopping:
            try:
                client = await RawClient.established(self.server, self.key)
            except (OSError, websockets.WebSocketException, AssertionError, asyncio.TimeoutError) as exc:
                self.log.append((time.monotonic(), "connect_failed", repr(exc)))
                await asyncio.sleep(0.1)
                continue
            self.log.append((time.monotonic(), "connected", client.socket_id))
            resume = {"position": self.position} if self.position else {}
            await client.send({"event": "pusher:subscribe", "data": {"channel": self.channel, **resume}})
            seqs: set[int] = set()
            record = {"subscribed": None, "closed": None, "seqs": seqs}
            self.connections.append(record)
            code = None
            try:
                while True:
                    frame = json.loads(await client.ws.recv())
                    event = frame.get("event")
                    if event == "seq":
                        seqs.add(data_of(frame)["seq"])
                        self.received.append(data_of(frame)["seq"])
                        self.position = frame["position"]
                    elif event == "tabcast:resumed":
                        self.log.append((time.monotonic(), "resumed", data_of(frame)))
                    elif event == "pusher_internal:subscription_succeeded":
                        self.log.append((time.monotonic(), "subscribed", client.socket_id))
                        record["subscribed"] = time.monotonic()
                        self.position = self.position or frame.get("position")
                    elif event == "pusher:error":
                        self.log.append((time.monotonic(), "told", error_code(frame)))
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            self.log.append((time.monotonic(), "closed", code))
            record["closed"] = time.monotonic()
            if code != 4200:
                return

    def events(self, what: str) -> list[tuple[float, object]]:
        return [(t, detail) for t, kind, detail in self.log if kind == what]


class JsTab:
    """A pusher-js client subscribed to ``channel``, its reports time-stamped as they arrive."""

    def __init__(self, app: dict, channel: str):
        self.client = PusherJs(app)
        self.client.connected(timeout=20)
        self.client.subscribe(channel, timeout=20)
        self.log: list[tuple[float, dict]] = []
        self._done = threading.Event()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        while not self._done.is_set():
            try:
                self.log.append((time.monotonic(), self.client.messages.get(timeout=0.1)))
            except queue.Empty:
                continue

    def close(self) -> None:
        self._done.set()
        self.client.close()

    def reconnects(self) -> list[tuple[float, float]]:
        """(time told 4200, time subscribed again on a new socket) for each 4200 it was told."""
        out = []
        for index, (told_at, message) in enumerate(self.log):
            if message.get("type") == "pusher_error" and (message.get("data") or {}).get("code") == 4200:
                back = next((t for t, m in self.log[index:] if m.get("type") == "subscribed"), None)
                out.append((told_at, back))
        return out


def error_code(frame: dict):
    """pusher:error carries its data as an object (not a JSON string, unlike other events)."""
    data = frame["data"]
    return (json.loads(data) if isinstance(data, str) else data).get("code")


# --- a single process drains -----------------------------------------------------------------


def _raw_http(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return _read_response(sock)


def _read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _publish_head(app: dict, body: bytes) -> bytes:
    _, headers = publish_request(app, "news", 0)
    return (f"POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: {headers['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n").encode()


async def test_sigterm_drains_sockets_over_the_window_and_answers_http_in_flight(redis_server):
    """One process (as in a Kubernetes pod): on SIGTERM /healthz turns 503 "draining", HTTP keeps
    being served (with Connection: close), new WebSockets get 4200, open ones are closed with
    4200 spread over TABCAST_DRAIN_SECONDS, a publish in flight is answered 200 after the drain,
    then the process exits 0."""
    server = TabcastProcess(redis_url=redis_server.url, extra_env={
        "TABCAST_DRAIN_SECONDS": str(DRAIN), "TABCAST_HANDSHAKE_TIMEOUT": "60"})
    await asyncio.to_thread(server.start)
    try:
        app = await asyncio.to_thread(server.create_app, "drain")
        clients = [await RawClient.established(server, app["key"]) for _ in range(12)]
        for client in clients:
            assert (await client.subscribe("news"))["event"] == "pusher_internal:subscription_succeeded"
        witness = await RawClient.established(server, app["key"])  # hears the publish in flight
        assert (await witness.subscribe("late"))["event"] == "pusher_internal:subscription_succeeded"

        # A keep-alive connection that has been used, and a publish whose body is still on its way.
        keep_alive = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        keep_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await asyncio.to_thread(_read_response, keep_alive))[0] == 200
        body = json.dumps({"channel": "late", "event": "in-flight", "data": {"n": 1}}).encode()
        in_flight = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        in_flight.sendall(_publish_head(app, body) + body[:10])

        os.killpg(server.proc.pid, signal.SIGTERM)
        signalled = time.monotonic()

        async def closed(client):
            told = await client.recv_event("pusher:error", timeout=DRAIN + 5)
            code, _ = await client.closed(timeout=5)
            return error_code(told), code, time.monotonic()

        closing = asyncio.gather(*(closed(client) for client in clients + [witness]))
        await asyncio.sleep(0.3)  # the drain has begun (its first batch goes out at once)

        # Readiness: 503 "draining" on the connection already open and on a new one.
        keep_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, answer = await asyncio.to_thread(_read_response, keep_alive)
        assert (status, json.loads(answer)) == (503, {"status": "draining"}), (status, answer)
        assert headers["retry-after"] == "1" and headers["connection"] == "close"
        status, headers, answer = await asyncio.to_thread(
            _raw_http, server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 503 and json.loads(answer)["status"] == "draining"
        # HTTP is still served, and each answer ends its connection (the next one goes elsewhere).
        other = json.dumps({"channel": "news", "event": "during", "data": {"n": 2}}).encode()
        status, headers, answer = await asyncio.to_thread(_raw_http, server.port, _publish_head(app, other) + other)
        assert status == 200 and headers["connection"] == "close", (status, headers, answer)
        # New WebSockets are told to go elsewhere.
        late = await RawClient.connect(server, app["key"])
        assert error_code(await late.recv()) == 4200
        assert (await late.closed())[0] == 4200

        results = await closing
        assert {(told, code) for told, code, _ in results} == {(4200, 4200)}, results
        times = sorted(at for _, _, at in results)
        # Spread over the window: 13 sockets in batches from ~0 to ~12/13 of it, not in one instant.
        assert times[-1] - times[0] >= DRAIN / 2, [round(t - signalled, 2) for t in times]
        assert times[-1] - signalled <= DRAIN + 2
        at_once = max(sum(1 for t in times if start <= t < start + 0.2) for start in times)
        assert at_once <= 4, [round(t - signalled, 2) for t in times]

        # The publish in flight since before SIGTERM completes after the drain and is answered 200.
        in_flight.sendall(body[10:])
        status, headers, answer = await asyncio.to_thread(_read_response, in_flight)
        assert status == 200, (status, answer)
        in_flight.close()
        keep_alive.close()

        # uvicorn ends a graceful shutdown by re-raising the signal it caught: -SIGTERM is a clean exit.
        code = await asyncio.to_thread(server.proc.wait, 20)
        assert code in (0, -signal.SIGTERM) and "Traceback" not in server.log(), (code, server.log())
        # The last metering flush, after the publish in flight, counted both publishes of the drain.
        counters = redis_client.Redis.from_url(redis_server.url)
        try:
            traffic = f"{server.env['TABCAST_REDIS_PREFIX']}:{{{app['app_id']}}}:traffic"
            assert int(counters.hget(traffic, "messages") or 0) == 2, counters.hgetall(traffic)
        finally:
            counters.close()
    finally:
        await asyncio.to_thread(server.stop)


# --- a rolling restart -----------------------------------------------------------------------


async def test_rolling_restart_of_two_processes_on_one_port_loses_no_publish(redis_server):
    cluster = Cluster(redis_server.url)
    port = free_port()
    try:
        a = await asyncio.to_thread(start_shared, cluster, port)
        b = await asyncio.to_thread(start_shared, cluster, port)
        assert listening_pids(port) == {a.proc.pid, b.proc.pid}
        app = await asyncio.to_thread(a.create_app, "rolling")

        tabs = [Tab(a, app["key"], "feed").start() for _ in range(16)]
        js = [await asyncio.to_thread(JsTab, app, "feed") for _ in range(3)]
        await asyncio.to_thread(wait_until, lambda: all(tab.events("subscribed") for tab in tabs), 20,
                                what="raw sockets subscribed")

        counter, lock = itertools.count(1), threading.Lock()
        publishers = [Publisher(app, "feed", counter, lock) for _ in range(4)]
        for publisher in publishers:
            publisher.start()
        await asyncio.sleep(1.5)

        drains = []
        old, new = [a, b], []
        for process in old:
            # The next release listens on the port before the old one stops: no instant without a listener.
            replacement = await asyncio.to_thread(start_shared, cluster, port)
            new.append(replacement)
            process.terminate()
            signalled = time.monotonic()
            # The draining process leaves the port at once; the kernel hands new connects to the others.
            await asyncio.to_thread(wait_until, lambda: process.proc.pid not in listening_pids(port), 2,
                                    what="the draining process to close its listener")
            code = await asyncio.to_thread(process.proc.wait, DRAIN + 20)
            assert code in (0, -signal.SIGTERM) and "Traceback" not in process.log(), (code, process.log())
            drains.append((signalled, time.monotonic()))
            await asyncio.sleep(1.5)  # publishing goes on against the new pair

        for publisher in publishers:
            publisher.stopping.set()
        for publisher in publishers:
            await asyncio.to_thread(publisher.join, 30)
        await asyncio.sleep(1)  # the last publishes reach the sockets

        # Every publish answered: 200, or a 503 that was retried until 200; no connect refused,
        # nothing lost on a connection closed under it.
        outcomes = [o for publisher in publishers for o in publisher.outcomes]
        published = {seq for publisher in publishers for seq in publisher.ok}
        asked = {seq for _, seq, _ in outcomes}
        bad = [o for o in outcomes if o[2] not in ("200", "503")]
        assert not bad, bad[:20]
        assert published == asked, sorted(asked - published)[:20]
        assert len(published) > 200, len(published)

        for signalled, exited in drains:
            # The draining process's sockets: told 4200 and closed with 4200, spread over the window.
            closes = [t for tab in tabs for t, code in tab.events("closed") if signalled <= t <= exited]
            told = [t for tab in tabs for t, code in tab.events("told") if signalled <= t <= exited and code == 4200]
            assert len(closes) >= 2 and len(told) == len(closes), (closes, told)
            times = sorted(closes + [t for tab in js for t, _ in tab.reconnects() if signalled <= t <= exited])
            # n sockets in evenly spaced batches: the last one goes (n-1)/n of the window after the first.
            expected = DRAIN * (len(times) - 1) / len(times)
            assert times[-1] - times[0] >= 0.75 * expected, [round(t - signalled, 2) for t in times]
            assert max(sum(1 for t in times if start <= t < start + 0.2) for start in times) <= len(times) / 2
        # Nobody ever found the port without a listener (the new process listened before the old one left).
        assert not [event for tab in tabs for event in tab.events("connect_failed")]

        for tab in tabs:
            closes = tab.events("closed")
            assert closes and all(code == 4200 for _, code in closes), tab.log
            # Each close was followed by a new connection, subscribed within seconds.
            for closed_at, _ in closes:
                back = next((t for t, _ in tab.events("subscribed") if t > closed_at), None)
                assert back is not None and back - closed_at < 3, tab.log
        # Recovery: every socket got every publish answered 200 exactly once, across its reconnects,
        # and each resume recovered everything.
        for tab in tabs:
            assert sorted(tab.received) == sorted(published), (len(tab.received), len(published))
            assert all(resumed["recovered"] for _, resumed in tab.events("resumed")), tab.events("resumed")
            assert len(tab.events("resumed")) == len(tab.events("closed")), tab.log
        # And while a socket was connected it got every publish live; so did, in particular, the
        # sockets on the process that was not being restarted.
        for tab in tabs:
            for record in tab.connections:
                if record["subscribed"] is None or record["closed"] is None:
                    continue
                window = {seq for t, seq, what in outcomes
                          if what == "200" and record["subscribed"] + 0.5 < t < record["closed"] - 0.5}
                assert window <= record["seqs"], sorted(window - record["seqs"])[:20]

        print("publishes:", len(published), "answers:", {what: sum(1 for o in outcomes if o[2] == what)
                                                          for what in {o[2] for o in outcomes}})
        for signalled, exited in drains:
            print("drain: raw sockets' 4200 closes at", sorted(round(t - signalled, 2) for tab in tabs
                                                              for t, _ in tab.events("closed") if signalled <= t <= exited),
                  "exit after", round(exited - signalled, 2))
        print("pusher-js back after", [[round(back - told, 2) for told, back in tab.reconnects()] for tab in js])
        for tab in js:
            reconnects = tab.reconnects()
            assert reconnects, [m for _, m in tab.log][-20:]
            for told_at, back in reconnects:
                assert back is not None and back - told_at < 3, [m for _, m in tab.log][-20:]
    finally:
        for tab in locals().get("tabs", []):
            tab.stopping = True
            if tab.task is not None:
                tab.task.cancel()
        for tab in locals().get("js", []):
            tab.close()
        for publisher in locals().get("publishers", []):
            publisher.stopping.set()
        await asyncio.to_thread(cluster.stop)
