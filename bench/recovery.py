"""Recovery (issue 10): what channel history costs (``python -m bench --only recovery``).

Every publish on an app with history (``history_size`` > 0, the default 100) is appended to its
channel's stream, and a resuming socket is sent what it missed. Each server here (embedded, and
one process on a Redis of its own) has two apps: **history off** (``update_app <id>
history_size=0``: the path from before history, the baseline) and **history on** (the
default). Off and on are measured alternately on the same server, so what the machine does
meanwhile hits both sides:

* **per publish**: signed HTTP publishes flat out for ``publish_seconds`` (like the bench's
  publishes/s row), to a channel with one subscriber; server CPU (the ``serve`` process tree)
  and redis-server CPU per publish;
* **per delivery**: ``fanout_messages`` publishes to a channel with ``fanout_subscribers``
  sockets, until every socket has them all; server and redis-server CPU per delivery;
* **resume**: ``resume_sockets`` sockets on one channel (app on) are dropped together,
  ``resume_messages`` are published, then they all reconnect at once, each subscribing with the
  last position it saw (``bench/js/resumer.js``); the time from the first reconnect to the last
  socket being live again (its replay checked message by message, then ``tabcast:resumed``
  with recovered true), and server / redis-server CPU per socket. Baselines, the same sockets
  after the same drop and publishes: subscribing fresh, without a position, on the same channel
  (history on), and on a channel of the history-off app;
* **memory per stored message**: ``memory_channels`` channels get one message each, then
  ``memory_messages`` - 1 more each (~130-byte frames): Redis ``used_memory`` (INFO memory)
  growth per message of the second fill, and per channel (the first fill minus its messages);
  embedded, the same fill into ``streams.MemoryStreams`` in this process, measured with
  tracemalloc (a process's RSS grows in allocator arenas: too coarse for this).

    .venv/bin/python -m bench --only recovery [--small]
"""

import hashlib
import http.client
import json
import re
import statistics
import threading
import time
from pathlib import Path

from tests.support.processes import RedisProcess, TabcastProcess
from tests.support.redis_topologies import redis_command

from . import procstats
from .loadgen import NodeWorker, Publisher, Subscribers
from .servers import TABCAST_BENCH_ENV

FULL = {"publish_seconds": 1.0, "publish_rounds": 10, "fanout_subscribers": 1000, "fanout_messages": 100,
        "fanout_rounds": 5, "resume_sockets": 1000, "resume_messages": 100, "resume_rounds": 3,
        "memory_channels": 1000, "memory_messages": 100}
SMALL = {"publish_seconds": 0.3, "publish_rounds": 1, "fanout_subscribers": 20, "fanout_messages": 5,
         "fanout_rounds": 1, "resume_sockets": 20, "resume_messages": 10, "resume_rounds": 1,
         "memory_channels": 20, "memory_messages": 5}
SIDES = ("off", "on")
# The load generator's sockets do not answer pusher:ping; on a busy machine this run keeps them
# silent for longer than the activity timeout (120 s + 30 s for the pong), so it is raised here.
RECOVERY_ENV = {**TABCAST_BENCH_ENV, "TABCAST_ACTIVITY_TIMEOUT": "3600"}
FRAME_BYTES = 130  # the frame (before its position) of the memory fill, like the publisher's
MAX_CHANNELS_PER_PUBLISH = 100
CONNECT_CHUNK = 100  # fan-out sockets connected per app in turn


class Server:
    """``manage.py serve`` (uvicorn, 1 process, embedded or on its own Redis) with an app whose
    history is off and one with the default history."""

    def __init__(self, redis: bool):
        self.use_redis = redis
        self.label = "Redis" if redis else "embedded"
        self.redis: RedisProcess | None = None
        self.process: TabcastProcess | None = None

    def start(self) -> None:
        if self.use_redis:
            self.redis = RedisProcess().start()
        self.process = TabcastProcess(extra_env=RECOVERY_ENV, redis_url=self.redis.url if self.redis else None)
        self.process.migrate()
        on, off = self.process.create_apps(2, "bench-recovery")
        self.process.update_app(off["app_id"], history_size=0)  # before the server starts: nothing cached
        self.apps = {"off": off, "on": on}
        self.process.start(migrate=False)

    def stop(self) -> None:
        if self.process:
            self.process.stop()
        if self.redis:
            self.redis.stop()

    def server_pids(self) -> list[int]:
        return procstats.tree(self.process.proc.pid)

    def redis_pids(self) -> list[int]:
        return [self.redis.proc.pid] if self.redis else []

    def url(self, side: str) -> str:
        return f"{self.process.ws}/app/{self.apps[side]['key']}?protocol=7&client=bench&version=1"

    def target(self, side: str, channel: str) -> dict:
        return {"mode": "http", "host": "127.0.0.1", "port": self.process.port, "app": self.apps[side],
                "channel": channel}


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of these processes, every thread, to the nanosecond (``/proc/<pid>/task/*/schedstat``).

    ``procstats.cpu_seconds`` reads utime + stime, which come in 10 ms clock ticks: ±3% on a block
    of 0.3 s of CPU, as much as the differences measured here."""
    total = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended meanwhile
    return total / 1e9


class _Cpu:
    def __init__(self, pids_of):
        self.pids_of = pids_of

    def start(self) -> None:
        self.wall0, self.cpu0 = time.monotonic(), cpu_seconds(self.pids_of())

    def stop(self) -> float:
        """CPU seconds since start (kept in ``used``); returns the share of one core."""
        self.used = cpu_seconds(self.pids_of()) - self.cpu0
        return self.used / max(time.monotonic() - self.wall0, 1e-9)


class Meter:
    """Server and redis-server CPU seconds over a block."""

    def __init__(self, server: Server):
        self.server = _Cpu(server.server_pids)
        self.redis = _Cpu(server.redis_pids)

    def start(self) -> None:
        self.server.start()
        self.redis.start()

    def stop(self) -> tuple[float, float]:
        self.server.stop()
        self.redis.stop()
        return self.server.used, self.redis.used

    def settle(self, quiet: float = 0.05, limit: float = 30) -> None:
        """Wait until the server is idle (sockets closed, a backlog written)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.server.start()
            time.sleep(0.2)
            if self.server.stop() < quiet:
                return


class Resumers:
    """``bench/js/resumer.js`` workers sharing the sockets; they remember each socket's position."""

    def __init__(self, workers: int):
        self.workers = [NodeWorker("resumer.js") for _ in range(workers)]

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]

    def _all(self, op: str, timeout: float, per_worker=None, **args) -> list[dict]:
        for i, worker in enumerate(self.workers):
            worker.send(op, **args, **(per_worker[i] if per_worker else {}))
        return [worker.reply(timeout) for worker in self.workers]

    def connect(self, url: str, channel: str, count: int | None = None, resume: bool = False, missed: int = 0,
                concurrency: int = 0, timeout: float = 60) -> dict:
        """New sockets (``count``), or every socket again (all at once unless ``concurrency``)."""
        n = len(self.workers)
        shares = None if count is None else [{"count": count // n + (i < count % n)} for i in range(n)]
        replies = self._all("connect", timeout + 30, per_worker=shares, url=url, channel=channel, resume=resume,
                            missed=missed, concurrency=concurrency, timeout_ms=int(timeout * 1000))
        return {"ok": sum(r["ok"] for r in replies), "failed": sum(r["failed"] for r in replies),
                "bad": sum(r["bad"] for r in replies), "whys": [w for r in replies for w in r["whys"]][:3],
                "seconds": (max(r["t_end"] for r in replies) - min(r["t_start"] for r in replies)) / 1000}

    def drop(self) -> None:
        self._all("drop", 30)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _paired(runs: list[dict], key: str) -> dict:
    """Medians of each side and the median of the rounds' on / off ratios."""
    off = [r["off"][key] for r in runs]
    on = [r["on"][key] for r in runs]
    ratios = [b / a for a, b in zip(off, on, strict=True) if a]
    ratios.sort()
    return {"off": _median(off), "on": _median(on), "ratio": _median(ratios) if ratios else None,
            "ratios": [round(r, 3) for r in ratios],
            "iqr": (ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]) if len(ratios) >= 4 else None}


def publish_cost(server: Server, meter: Meter, pub: Publisher, sizes: dict, concurrency: int, log) -> dict:
    """Server and redis-server CPU per signed publish, history off vs on, in alternating blocks."""
    runs = []
    for round_ in range(sizes["publish_rounds"]):
        run = {}
        for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
            meter.settle()
            meter.start()
            sent = pub.publish(server.target(side, "pub"), 10**7, concurrency=concurrency,
                               duration=sizes["publish_seconds"], pipeline=1)
            server_cpu, redis_cpu = meter.stop()
            if sent["errors"] or not sent["ok"]:
                raise RuntimeError(f"{server.label}, history {side}: {sent['errors']} publishes failed of {sent['ok']}")
            run[side] = {"server_us": server_cpu / sent["ok"] * 1e6, "redis_us": redis_cpu / sent["ok"] * 1e6,
                         "rate": sent["ok"] / ((sent["t_end"] - sent["t_first"]) / 1000)}
        runs.append(run)
    result = {"server_us": _paired(runs, "server_us"), "rate": _paired(runs, "rate")}
    if server.use_redis:
        result["redis_us"] = _paired(runs, "redis_us")
        result["total_us"] = _paired([{side: {"total": r[side]["server_us"] + r[side]["redis_us"]} for side in SIDES}
                                      for r in runs], "total")
    log(f"  {server.label}: per publish, server CPU off/on {result['server_us']['off']:.1f}/"
        f"{result['server_us']['on']:.1f} µs ({_ratio(result['server_us'])}, rounds {result['server_us']['ratios']})"
        + (f"; redis-server {result['redis_us']['off']:.1f}/{result['redis_us']['on']:.1f} µs" if server.use_redis else ""))
    return result


def fanout_cost(server: Server, meter: Meter, pub: Publisher, subs: dict, sizes: dict, log) -> dict:
    """Server and redis-server CPU per delivery, history off vs on, in alternating runs."""
    count, messages = sizes["fanout_subscribers"], sizes["fanout_messages"]
    runs = []
    for round_ in range(sizes["fanout_rounds"]):
        run = {}
        for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
            subs[side].reset()
            meter.settle()
            meter.start()
            sent = pub.publish(server.target(side, "fan"), messages)
            done = subs[side].expect(messages, timeout=60)
            server_cpu, redis_cpu = meter.stop()
            if not done["complete"] or sent["errors"]:
                raise RuntimeError(f"{server.label}, history {side}: {done['received']} of {messages * count} "
                                   f"delivered, {sent['errors']} publishes failed")
            seconds = (done["t_last"] - sent["t_first"]) / 1000
            run[side] = {"server_us": server_cpu / done["received"] * 1e6,
                         "redis_us": redis_cpu / done["received"] * 1e6, "rate": done["received"] / seconds}
        runs.append(run)
    result = {"server_us": _paired(runs, "server_us"), "rate": _paired(runs, "rate")}
    if server.use_redis:
        result["redis_us"] = _paired(runs, "redis_us")
    log(f"  {server.label}: per delivery ({count:,} subscribers), server CPU off/on {result['server_us']['off']:.2f}/"
        f"{result['server_us']['on']:.2f} µs ({_ratio(result['server_us'])}, rounds {result['server_us']['ratios']})")
    return result


RESUME_KINDS = ("resume", "fresh", "fresh, history off")


def resume_cost(server: Server, meter: Meter, pub: Publisher, workers: int, sizes: dict, log) -> dict:
    """All sockets dropped, messages published, all back at once: with positions, or fresh."""
    count, missed = sizes["resume_sockets"], sizes["resume_messages"]
    resumers = Resumers(workers)
    try:
        first = resumers.connect(server.url("on"), "resume", count=count, concurrency=200)
        if first["ok"] != count:
            raise RuntimeError(f"{server.label}: {first}")
        runs: dict[str, list[dict]] = {kind: [] for kind in RESUME_KINDS}
        for round_ in range(sizes["resume_rounds"]):
            shift = round_ % len(RESUME_KINDS)
            for kind in RESUME_KINDS[shift:] + RESUME_KINDS[:shift]:
                side = "off" if kind.endswith("history off") else "on"
                resumers.drop()
                meter.settle()
                sent = pub.publish(server.target(side, "resume"), missed)
                if sent["errors"]:
                    raise RuntimeError(f"{server.label}: {sent['errors']} publishes failed")
                meter.settle()
                meter.start()
                back = resumers.connect(server.url(side), "resume", resume=kind == "resume", missed=missed)
                server_cpu, redis_cpu = meter.stop()
                if back["ok"] != count:
                    raise RuntimeError(f"{server.label}, {kind}: {back['ok']} of {count} sockets live as expected, "
                                       f"{back['failed']} failed, {back['bad']} wrong: {back['whys']}")
                runs[kind].append({"seconds": back["seconds"], "server_us": server_cpu / count * 1e6,
                                   "redis_us": redis_cpu / count * 1e6})
        resumers.drop()
    finally:
        resumers.stop()
    result = {kind: {key: _median([r[key] for r in rows]) for key in rows[0]} | {"runs": rows}
              for kind, rows in runs.items()}
    # What one replayed message costs the server: the resume's extra CPU over a fresh subscribe.
    result["replay_us_per_message"] = ((result["resume"]["server_us"] - result["fresh"]["server_us"]) / missed
                                       if missed else 0.0)
    log(f"  {server.label}: {count:,} sockets back at once after {missed} messages: resume "
        f"{result['resume']['seconds'] * 1000:,.0f} ms ({result['resume']['server_us']:.0f} µs CPU each), fresh "
        f"{result['fresh']['seconds'] * 1000:,.0f} ms ({result['fresh']['server_us']:.0f} µs), fresh on the "
        f"history-off app {result['fresh, history off']['seconds'] * 1000:,.0f} ms "
        f"({result['fresh, history off']['server_us']:.0f} µs)")
    return result


# --- memory per stored message ---


def _fill(server: Server, channels: list[str], messages: int) -> None:
    """``messages`` publishes to each channel (up to 100 channels per signed publish), 4 threads."""
    from service.realtime import signatures

    app = server.apps["on"]
    path = f"/apps/{app['app_id']}/events"
    groups = [channels[i:i + MAX_CHANNELS_PER_PUBLISH] for i in range(0, len(channels), MAX_CHANNELS_PER_PUBLISH)]
    data = json.loads(_frame(channels[0]))["data"]
    errors = []

    def publish(mine: list[list[str]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.process.port, timeout=30)
        try:
            for _ in range(messages):
                for group in mine:
                    body = json.dumps({"name": "bench", "channels": group, "data": data}).encode()
                    query = {"auth_key": app["key"], "auth_timestamp": str(int(time.time())), "auth_version": "1.0",
                             "body_md5": hashlib.md5(body).hexdigest()}
                    query["auth_signature"] = signatures.sign(
                        app["secret"], signatures.request_string_to_sign("POST", path, query))
                    conn.request("POST", path + "?" + "&".join(f"{k}={v}" for k, v in query.items()), body,
                                 {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    answer = response.read()
                    if response.status != 200:
                        errors.append(f"{response.status} {answer[:200]!r}")
                        return
        finally:
            conn.close()

    threads = [threading.Thread(target=publish, args=(groups[i::4],)) for i in range(min(4, len(groups)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"memory fill: {errors[0]}")


def _used_memory(server: Server) -> int:
    return int(re.search(r"used_memory:(\d+)", redis_command(server.redis.port, "INFO", "memory"))[1])


def _stored_frame(server: Server) -> int:
    """Bytes of one stored frame (its position included): the newest of a history list."""
    keys = redis_command(server.redis.port, "--scan", "--pattern", "*:history", timeout=10).split()
    return max(len(redis_command(server.redis.port, "LINDEX", key, "0").rstrip("\n").encode()) for key in keys[:20])


def _frame(channel: str) -> str:
    """The frame of the memory fill: ~130 bytes before its position, like the publisher's."""
    data = "x" * (FRAME_BYTES - len(json.dumps({"event": "bench", "channel": channel, "data": ""})))
    return json.dumps({"event": "bench", "channel": channel, "data": data}, separators=(",", ":"))


def redis_memory(server: Server, meter: Meter, sizes: dict, log) -> dict:
    """Redis used_memory growth per stored message (and per channel), filled through the server."""
    n, messages = sizes["memory_channels"], sizes["memory_messages"]
    channels = [f"mem-{i}" for i in range(n)]
    meter.settle()
    before = _used_memory(server)
    _fill(server, channels, 1)
    meter.settle()
    one = _used_memory(server)
    _fill(server, channels, messages - 1)
    meter.settle()
    full = _used_memory(server)
    return _memory_result("Redis used_memory", n, messages, before, one, full, _stored_frame(server), log)


def embedded_memory(sizes: dict, log) -> dict:
    """The same fill into the embedded layer's streams (``streams.MemoryStreams``) in this process,
    measured with tracemalloc: the Python heap a ``serve`` process keeps (its RSS moves in
    allocator arenas, too coarse for this)."""
    import tracemalloc

    from service.realtime.channel_names import group_name
    from service.realtime.streams import MemoryStreams, Stream

    n, messages = sizes["memory_channels"], sizes["memory_messages"]
    memory = MemoryStreams()
    targets = [(Stream(group_name(1, f"mem-{i}"), 100, 120), _frame(f"mem-{i}")) for i in range(n)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for stream, frame in targets:
            memory.append(stream, frame)
        one = tracemalloc.get_traced_memory()[0]
        stored = ""
        for _ in range(messages - 1):
            for stream, frame in targets:
                stored = memory.append(stream, frame)[0]
        full = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return _memory_result("Python heap (tracemalloc)", n, messages, before, one, full, len(stored.encode()), log)


def _memory_result(what: str, n: int, messages: int, before: int, one: int, full: int, frame: int, log) -> dict:
    per_message = (full - one) / (n * (messages - 1))
    result = {"what": what, "channels": n, "messages": messages, "bytes_per_message": per_message,
              "bytes_per_channel": (one - before) / n - per_message, "total_mib": (full - before) / 2**20,
              "stored_frame_bytes": frame}
    log(f"  {what}: {per_message:.0f} B per stored message (the stored frame is {frame} B), "
        f"{result['bytes_per_channel']:.0f} B per channel ({n:,} channels x {messages} messages)")
    return result


def measure(profile, server_cpus=None, log=print) -> dict:
    """Every row, embedded then with Redis. ``profile``: the bench's (its name picks the sizes)."""
    sizes = SMALL if profile.name == "small" else FULL
    results: dict = {"sizes": sizes}
    for redis in (False, True):
        server = Server(redis)
        with procstats.cpus(server_cpus):  # the server (and its Redis) on the server's cores
            try:
                server.start()
            except BaseException:
                server.stop()
                raise
        pub = Publisher()
        half = max(1, profile.generator_workers // 2)
        fan = {side: Subscribers(half) for side in SIDES}  # each app's fan-out sockets
        one = Subscribers(1)  # each app's publish channel has one subscriber
        try:
            meter = Meter(server)
            # The two apps' sockets are connected in alternate chunks: connected one app after the
            # other, the app connected second measured up to 8% less CPU per delivery in process
            # (bench/ab.py --history: memory layout), whichever it was.
            fan_count = sizes["fanout_subscribers"]
            chunks = [(one, "pub", 1)] + [(None, "fan", min(CONNECT_CHUNK, fan_count - done))
                                           for done in range(0, fan_count, CONNECT_CHUNK)]
            for subs, channel, count in chunks:
                for side in SIDES:
                    connected = (subs or fan[side]).connect(server.url(side), count, "pusher", channel,
                                                            concurrency=min(count, 200))
                    if connected["ok"] != count:
                        raise RuntimeError(f"{server.label}: {connected}")
            for side in SIDES:  # warm-up: each app's first publishes and deliveries
                fan[side].reset()
                pub.publish(server.target(side, "fan"), 2)
                if not fan[side].expect(2, timeout=30)["complete"]:
                    raise RuntimeError(f"{server.label}: warm-up messages were not delivered")
            row = results[server.label] = {"seconds": {}}
            started = time.monotonic()

            def timed(name: str, value):
                nonlocal started
                row[name], row["seconds"][name] = value, round(time.monotonic() - started, 1)
                started = time.monotonic()

            timed("publish", publish_cost(server, meter, pub, sizes, profile.publish_concurrency, log))
            timed("fanout", fanout_cost(server, meter, pub, fan, sizes, log))
            for subs in (one, *fan.values()):
                subs.close()
            timed("resume", resume_cost(server, meter, pub, profile.generator_workers, sizes, log))
            timed("memory", redis_memory(server, meter, sizes, log) if redis else embedded_memory(sizes, log))
            log(f"  {server.label}: seconds per part {row['seconds']}")
        finally:
            pub.stop()
            for subs in (one, *fan.values()):
                subs.stop()
            server.stop()
    return results


# --- the report ---


def _ratio(cell: dict) -> str:
    """The median of the rounds' on / off ratios, and their middle half when there are 4 rounds or more."""
    if cell.get("ratio") is None:
        return "—"
    iqr = cell.get("iqr")
    return f"{cell['ratio']:.2f}x" + (f" ({iqr[0]:.2f}–{iqr[1]:.2f})" if iqr else "")


def table(results: dict) -> str:
    """The Markdown of the recovery rows."""
    sizes = results["sizes"]
    labels = [label for label in ("embedded", "Redis") if label in results]
    lines = ["| history off (a) vs on (default 100) | " + " | ".join(
                 f"{label}: off (a) | {label}: on | {label}: on / off" for label in labels) + " | target |",
             "|---" * (3 * len(labels) + 2) + "|"]

    def row(label: str, cells: list[dict | None], fmt: str, target: str = "") -> None:
        text = []
        for cell in cells:
            text += ["—", "—", "—"] if cell is None else [fmt.format(cell["off"]), fmt.format(cell["on"]), _ratio(cell)]
        lines.append(f"| {label} | " + " | ".join(text) + f" | {target} |")

    get = lambda label, *path: _dig(results[label], path)  # noqa: E731
    row("server CPU per signed publish (µs)", [get(lb, "publish", "server_us") for lb in labels], "{:.1f}", "≤ 1.10x")
    if "Redis" in labels:
        row("redis-server CPU per publish (µs)", [None if lb != "Redis" else get(lb, "publish", "redis_us")
                                                  for lb in labels], "{:.1f}")
        row("server + redis-server CPU per publish (µs)", [None if lb != "Redis" else get(lb, "publish", "total_us")
                                                           for lb in labels], "{:.1f}", "≤ 1.10x")
    row("signed publishes/s (flat out, as the publishes/s row)", [get(lb, "publish", "rate") for lb in labels],
        "{:,.0f}")
    row(f"server CPU per delivery, {sizes['fanout_subscribers']:,} subscribers (µs)",
        [get(lb, "fanout", "server_us") for lb in labels], "{:.2f}", "1.00x")
    if "Redis" in labels:
        row("redis-server CPU per delivery (µs)", [None if lb != "Redis" else get(lb, "fanout", "redis_us")
                                                   for lb in labels], "{:.3f}")
    n, m = sizes["resume_sockets"], sizes["resume_messages"]
    lines += ["", f"| {n:,} sockets dropped, {m} messages published, all back at once | "
              + " | ".join(f"{label}: time to all live (ms) | {label}: server CPU per socket (µs)"
                           + (" | Redis: redis-server CPU per socket (µs)" if label == "Redis" else "")
                           for label in labels) + " |",
              "|---" * (1 + sum(3 if label == "Redis" else 2 for label in labels)) + "|"]
    for kind, what in (("fresh, history off", "subscribe fresh, app with history off (a)"),
                       ("fresh", "subscribe fresh (no position), history on"),
                       ("resume", f"resume with the last position: {m} replayed + `tabcast:resumed` each")):
        cells = []
        for label in labels:
            cell = results[label]["resume"][kind]
            base = results[label]["resume"]["fresh, history off"]
            ratio = "" if kind.endswith("off") else f" ({cell['seconds'] / base['seconds']:.2f}x)"
            cells += [f"{cell['seconds'] * 1000:,.0f}{ratio}", f"{cell['server_us']:,.0f}"]
            if label == "Redis":
                cells.append(f"{cell['redis_us']:,.0f}")
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    cells = []
    for label in labels:
        cells += [f"{results[label]['resume']['replay_us_per_message']:.2f}", ""] + ([""] if label == "Redis" else [])
    lines.append("| server CPU per replayed message: (resume - fresh) / messages (µs) | " + " | ".join(cells) + " |")
    mem = [results[label]["memory"] for label in labels]
    lines += ["", "| stored history | " + " | ".join(f"{label}: {m_['what']}" for label, m_ in zip(labels, mem)) + " |",
              "|---" * (1 + len(labels)) + "|",
              "| per stored message (B) | " + " | ".join(
                  f"{m_['bytes_per_message']:.0f} (the stored frame: {m_['stored_frame_bytes']} B)" for m_ in mem)
              + " |",
              "| per channel, besides its messages (B) | " + " | ".join(f"{m_['bytes_per_channel']:.0f}" for m_ in mem)
              + " |",
              "| filled | " + " | ".join(f"{m_['channels']:,} channels x {m_['messages']} messages: "
                                         f"{m_['total_mib']:.1f} MiB" for m_ in mem) + " |"]
    return "\n".join(lines)


def _dig(value, path):
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


if __name__ == "__main__":
    import sys

    from .profiles import FULL as FULL_PROFILE, SMALL as SMALL_PROFILE

    measured = measure(SMALL_PROFILE if "--small" in sys.argv else FULL_PROFILE,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(measured))
