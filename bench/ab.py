"""What a change costs on the two hot paths, against any earlier revision, measured in one run.

    .venv/bin/python -m bench.ab --base af9c659      # this tree vs that commit
    .venv/bin/python -m bench.ab --base HEAD~3 --rounds 5

The full bench measures whole servers, whose CPU per operation moves by ±20% on a shared
machine; a change that adds a few percent to a path disappears in that noise. This measures
the Python that the change touched, in process, with the network taken out:

- **per delivery**: ``Hub.broadcast`` to 5,000 sockets of the server's own protocol class
  (``ws_protocol.LeanWebSocketProtocol``) whose transport only counts writes: everything
  Tabcast does per subscriber except the ``write`` syscall (~8-10 µs here, ``floor.py``);
- **per publish**: one signed ``POST /apps/{id}/events`` through the whole ASGI application
  (every middleware, validation, signature, quotas, node, embedded layer), HTTP parsing aside.

Each side runs in its own process (both trees use this virtualenv), alternately, ``--rounds``
times; the table shows the median of each side and new / base. The base tree is a
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
        started = time.process_time()
        for _ in range(20):
            hub.broadcast(1, "ch", frame)
            while getattr(hub, "backlog", 0):  # sliced fan-out (hub.py), where it exists
                await asyncio.sleep(0)
        runs.append((time.process_time() - started) / (20 * 5000) * 1e9)
    return sorted(runs)[len(runs) // 2]

async def per_publish_us():
    from service.realtime.node import get_node
    await get_node()
    app = await asyncio.to_thread(services.create_app, "ab")
    body = json.dumps({"name": "e", "channel": "ch", "data": "x" * 100}).encode()
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

    for _ in range(300):
        await publish()
    runs = []
    for _ in range(7):
        started = time.process_time()
        for _ in range(2000):
            await publish()
        runs.append((time.process_time() - started) / 2000 * 1e6)
    return sorted(runs)[len(runs) // 2]

async def main():
    import gc
    gc.collect()
    gc.freeze()  # as serve does at start (server.freeze_loaded_objects)
    publish_us = await per_publish_us()
    print(json.dumps({"delivery_ns": await per_delivery_ns(), "publish_us": publish_us}))

asyncio.run(main())
'''


def probe(tree: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(tree)], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")})
    if done.returncode != 0:
        raise RuntimeError(f"probe failed in {tree}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the git revision to compare this tree with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
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
