"""What a change costs on the two hot paths, against any earlier revision, measured in one run.

    .venv/bin/python -m bench.ab --base af9c659      # this tree vs that commit
    .venv/bin/python -m bench.ab --base HEAD~3 --rounds 5
    .venv/bin/python -m bench.ab --parts             # what limits, metrics, request ids cost per publish

The full bench measures whole servers, whose CPU per operation moves by ±20% on a shared
machine; a change that adds a few percent to a path disappears in that noise. This measures
the Python that the change touched, in process, with the network taken out:

- **per delivery**: ``Hub.broadcast`` to 5,000 sockets of the server's own protocol class
  (``ws_protocol.LeanWebSocketProtocol``) whose transport only counts writes: everything
  Tabcast does per subscriber except the ``write`` syscall (~8-10 µs here, ``floor.py``);
- **per publish**: one signed ``POST /apps/{id}/events`` through the whole ASGI application
  (every middleware, validation, signature, quotas, node, embedded layer), HTTP parsing aside.

Times are the event loop thread's CPU time (``time.thread_time``): the database work the
node's once-a-second flush hooks do in worker threads is not charged to the hot path. Each side
runs in its own process (both trees use this virtualenv), alternately, ``--rounds`` times; the table shows the median of each side and new / base. The base tree is a
``git worktree`` of ``--base`` in a temporary directory, removed afterwards.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside the tree under test (its code on sys.path); prints one JSON line.
PROBE = r'''
import asyncio, json, os, sys, tempfile, time
root = sys.argv[1]
sys.path.insert(0, root); os.chdir(root)
os.environ.update({"TABCAST_VAR_DIR": tempfile.mkdtemp(prefix="tabcast-ab-"), "TABCAST_LOG_LEVEL": "WARNING",
                   "DJANGO_SETTINGS_MODULE": "service.settings", "TABCAST_HTTP_RATE_PER_APP": "1000000000"})
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from websockets.protocol import State
from service.asgi import application
from service.realtime import signatures
from service.realtime.connection import Connection
from service.realtime.hub import Hub
from service.realtime.ws_protocol import LeanWebSocketProtocol, _Writable
from tenants import services

class Transport:
    __slots__ = ("writes",)
    def __init__(self): self.writes = 0
    def write(self, data): self.writes += 1
    def get_write_buffer_size(self): return 0
    def is_closing(self): return False

class Open:
    state, extensions = State.OPEN, []

def socket_protocol():
    protocol = object.__new__(LeanWebSocketProtocol)  # what serve's sockets are, minus a real transport
    protocol.conn, protocol.writable, protocol.transport = Open(), _Writable(), Transport()
    protocol.close_sent = protocol.disconnected = False
    return protocol

class App:
    id, tenant_id = 1, None

async def per_delivery_ns():
    hub = Hub()
    for i in range(5000):
        hub.subscribe(1, "ch", Connection(f"{i}.1", App(), socket_protocol().send, 1 << 20))
    frame = json.dumps({"event": "e", "channel": "ch", "data": "x" * 100})
    runs = []
    for _ in range(9):
        started = time.thread_time()
        for _ in range(20):
            hub.broadcast(1, "ch", frame)
            while getattr(hub, "backlog", 0):  # sliced fan-out (hub.py), where it exists
                await asyncio.sleep(0)
        runs.append((time.thread_time() - started) / (20 * 5000) * 1e9)
    return sorted(runs)[len(runs) // 2]

async def make_publisher(app=None, channel="ch"):
    """An async function that sends one signed publish (to ``app``, a new one by default) through the
    whole ASGI application."""
    from service.realtime.node import get_node
    await get_node()
    if app is None:
        app = await asyncio.to_thread(services.create_app, "ab")
    body = json.dumps({"name": "e", "channel": channel, "data": "x" * 100}).encode()
    path = f"/apps/{app.id}/events"
    query = {"auth_key": app.key, "auth_timestamp": str(int(time.time())), "auth_version": "1.0",
             "body_md5": signatures.body_md5(body)}
    query["auth_signature"] = signatures.sign(app.secret, signatures.request_string_to_sign("POST", path, query))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": "&".join(f"{k}={v}" for k, v in query.items()).encode(),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8000), "state": {}}

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def publish():
        answers = []
        async def send(message):
            answers.append(message)
        await application(dict(scope), receive, send)
        assert answers[0]["status"] == 200, answers

    return publish

async def per_publish_us():
    publish = await make_publisher()
    warm_until = time.monotonic() + 2  # past the node's start-up work (its first flushes)
    while time.monotonic() < warm_until:
        await publish()
    runs = []
    for _ in range(7):
        started = time.thread_time()
        for _ in range(2000):
            await publish()
        runs.append((time.thread_time() - started) / 2000 * 1e6)
    return sorted(runs)[len(runs) // 2]

async def main():
    import gc
    gc.collect()
    gc.freeze()  # as serve does at start (server.freeze_loaded_objects)
    publish_us = await per_publish_us()
    print(json.dumps({"delivery_ns": await per_delivery_ns(), "publish_us": publish_us}))

asyncio.run(main())
'''


# Runs in this tree only: what each feature on the publish path costs, by switching it off
# (replacing its functions with no-ops) in alternating blocks of one process, so that process-
# to-process variation (a few µs here) cancels out. Names the functions it replaces: a rename
# makes it fail loudly, not measure nothing.
PARTS = PROBE.replace("asyncio.run(main())", "") + r'''
import orjson
from service.api import fast, validation
from service.realtime import metrics, quotas, tenancy

ON = {"limits": (quotas.message_refusal, quotas.delivery_refusal, validation.json_body, tenancy._acceptable),
      "metrics": (fast.metrics.http_request_done, metrics.published, metrics.stamp),
      "request id": (fast.begin_request,)}
OFF = {"limits": (lambda app: None, lambda app, traffic=None: None, lambda body, ctype: orjson.loads(body),
                  lambda key, app_id: True),
       "metrics": (lambda *a: None, lambda *a, **k: None, lambda: None),
       "request id": (lambda scope: "-",)}

def switch(feature, on):
    values = (ON if on else OFF)[feature]
    if feature == "limits":
        quotas.message_refusal, quotas.delivery_refusal, validation.json_body, tenancy._acceptable = values
    elif feature == "metrics":
        fast.metrics.http_request_done, metrics.published, metrics.stamp = values
    else:
        (fast.begin_request,) = values

async def parts():
    import gc
    gc.collect()
    gc.freeze()
    publish = await make_publisher()
    async def block(n=1000):
        started = time.thread_time()
        for _ in range(n):
            await publish()
        return (time.thread_time() - started) / n * 1e6
    variants = {"all on": ()} | {f"{name} off": (name,) for name in ON}
    warm_until = time.monotonic() + 2
    while time.monotonic() < warm_until:
        await block(100)
    runs = {name: [] for name in variants}
    for _ in range(25):
        for name, off in variants.items():
            for feature in ON:
                switch(feature, feature not in off)
            runs[name].append(await block())
    print(json.dumps({name: sorted(times)[len(times) // 4] for name, times in runs.items()}))

asyncio.run(parts())
'''


# Runs in this tree only: what channel history (docs/recovery.md) costs on the two hot paths. Two
# apps in one process, one with history off (history_size 0: the path from before history) and
# one with the default 100, measured in alternating blocks (their order swapped every round), so
# process-to-process variation cancels out:
# - per publish: signed publishes through the ASGI application to a channel with one subscriber
#   (node.subscribe'd, so the history app's messages go through node._in_order);
# - per delivery: node.publish to a channel with 5,000 subscribers, until every write is made.
HISTORY = PROBE.replace("asyncio.run(main())", "") + r"""
from service.realtime.node import get_node
from service.realtime.tenancy import get_app

FAN = 5000
written = 0
REDIS_PID = int(os.environ.get("AB_REDIS_PID") or 0)  # --redis: the redis-server's CPU is read per block too
redis_cpu = {"off": 0.0, "on": 0.0}

def redis_seconds():
    if not REDIS_PID:
        return 0.0
    fields = open(f"/proc/{REDIS_PID}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

class CountingTransport(Transport):
    __slots__ = ()
    def write(self, data):
        global written
        written += 1

def counted_send():
    protocol = socket_protocol()
    protocol.transport = CountingTransport()
    return protocol.send

async def history():
    import gc
    gc.collect()
    gc.freeze()
    node = await get_node()
    sides = {}
    for label, fields in (("off", {"history_size": 0}), ("on", {})):
        model = await asyncio.to_thread(services.create_app, f"ab-history-{label}", **fields)
        info = await get_app(app_id=model.id)
        assert (info.history_size > 0) == (label == "on"), info
        sides[label] = (info, await make_publisher(model, "ch"))
    # The two sides' sockets are made alternately: made one side after the other, the side made
    # second measured 7-10% less per delivery whichever it was (memory layout), not history.
    for i in range(FAN + 1):  # socket 0: the publish rows' one subscriber; the rest: the fan-out's
        for n, (info, _) in enumerate(sides.values(), 1):
            conn = Connection(f"{n}.{i}", info, counted_send(), 1 << 20)
            await node.connect(conn)
            await node.subscribe(conn, "ch" if i == 0 else "fan", None)

    async def publish_block(side, n=2000):
        publish = sides[side][1]
        started, redis_started = time.thread_time(), redis_seconds()
        for _ in range(n):
            await publish()
        redis_cpu[side] += redis_seconds() - redis_started
        return (time.thread_time() - started) / n * 1e6

    async def delivery_block(side, n=40):
        info = sides[side][0]
        target = written + n * FAN
        started = time.thread_time()
        for _ in range(n):
            await node.publish(info, ["fan"], "e", "x" * 100)
        while written < target:
            await asyncio.sleep(0)
        return (time.thread_time() - started) / (n * FAN) * 1e9

    warm_until = time.monotonic() + 2
    while time.monotonic() < warm_until:
        for side in sides:
            await publish_block(side, 200)
            await delivery_block(side, 2)
    runs = {f"{what}_{side}": [] for what in ("publish_us", "delivery_ns") for side in sides}
    redis_cpu.update(off=0.0, on=0.0)
    for round_ in range(21):
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
        for side in order:
            runs[f"publish_us_{side}"].append(await publish_block(side))
        for side in order:
            runs[f"delivery_ns_{side}"].append(await delivery_block(side))
    if REDIS_PID:  # whole-run totals: a block's redis-server CPU is a few clock ticks
        runs.update({f"redis_publish_us_{side}": cpu / (21 * 2000) * 1e6 for side, cpu in redis_cpu.items()})
    print(json.dumps(runs))

asyncio.run(history())
"""


def probe(tree: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(tree)], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")})
    if done.returncode != 0:
        raise RuntimeError(f"probe failed in {tree}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parts() -> None:
    done = subprocess.run([sys.executable, "-c", PARTS, str(ROOT)], capture_output=True, text=True, timeout=900,
                          env={k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")})
    if done.returncode != 0:
        raise RuntimeError(f"parts probe failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    full = measured["all on"]
    print("| this tree, ASGI per signed publish | µs (p25 of 25 blocks) | the feature costs |")
    print("|---|---|---|")
    for name, us in measured.items():
        cost = "" if name == "all on" else f"{full - us:.2f} µs"
        print(f"| {name} | {us:.2f} | {cost} |")


def history(redis: bool = False) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    server = None
    if redis:  # the same, with the process on a redis-server of its own (as `serve` with REDIS_URL)
        from tests.support.processes import RedisProcess

        server = RedisProcess().start()
        env.update(REDIS_URL=server.url, AB_REDIS_PID=str(server.proc.pid))
    try:
        done = subprocess.run([sys.executable, "-c", HISTORY, str(ROOT)], capture_output=True, text=True,
                              timeout=900, env=env)
    finally:
        if server is not None:
            server.stop()
    if done.returncode != 0:
        raise RuntimeError(f"history probe failed:\n{done.stderr[-3000:]}")
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"| this tree, {'on Redis' if redis else 'embedded'}, 21 alternating blocks | history off | history on (100) "
          "| on / off (median of the rounds' ratios) |")
    print("|---|---|---|---|")
    if redis:
        off, on = runs["redis_publish_us_off"], runs["redis_publish_us_on"]
        print(f"| redis-server per signed publish (µs, all blocks) | {off:,.2f} | {on:,.2f} | {on / off:.2f}x |")
    for key, label in (("publish_us", "ASGI per signed publish, 1 subscriber (µs)"),
                       ("delivery_ns", "Python per delivery, 5,000 sockets (ns)")):
        off, on = runs[f"{key}_off"], runs[f"{key}_on"]
        ratios = sorted(b / a for a, b in zip(off, on))
        print(f"| {label} | {statistics.median(off):,.2f} | {statistics.median(on):,.2f} | "
              f"{statistics.median(ratios):.3f}x (p25-p75 {ratios[len(ratios) // 4]:.3f}-"
              f"{ratios[3 * len(ratios) // 4]:.3f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="the git revision to compare this tree with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", action="store_true",
                        help="instead: what the limits, metrics and request ids cost per publish in this tree")
    parser.add_argument("--history", action="store_true",
                        help="instead: channel history on vs off per publish and per delivery in this tree")
    parser.add_argument("--redis", action="store_true", help="with --history: on a redis-server of its own")
    args = parser.parse_args()
    if args.parts:
        return parts()
    if args.history:
        return history(redis=args.redis)
    if not args.base:
        parser.error("--base REV (or --parts)")
    base = Path(tempfile.mkdtemp(prefix="tabcast-ab-base-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        results = {"base": [], "new": []}
        for _ in range(args.rounds):  # alternate, so a busy moment hits both sides
            results["base"].append(probe(base))
            results["new"].append(probe(ROOT))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    print(f"| in-process cost ({args.rounds} alternating rounds, median) | {args.base} | this tree | new / base |")
    print("|---|---|---|---|")
    for key, label in (("delivery_ns", "Python per delivery, 5,000 sockets (ns)"),
                       ("publish_us", "ASGI per signed publish (µs)")):
        old = statistics.median(r[key] for r in results["base"])
        new = statistics.median(r[key] for r in results["new"])
        print(f"| {label} | {old:,.1f} | {new:,.1f} | {new / old:.2f}x |")


if __name__ == "__main__":
    main()
