"""The load generator: Node `ws` worker processes driven over JSON lines (bench/js/)."""

import json
import os
import queue
import subprocess
import threading
from pathlib import Path

from tests.support.clients import JS_DIR, node_binary

SCRIPTS = Path(__file__).resolve().parent / "js"


class NodeWorker:
    """One Node process running a bench script; ``call`` sends a command and waits for its answer."""

    def __init__(self, script: str):
        env = {**os.environ, "NODE_PATH": str(JS_DIR / "node_modules")}
        self.proc = subprocess.Popen([node_binary(), "--max-old-space-size=1024", str(SCRIPTS / script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env)
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.replies.put(json.loads(line))
        self.replies.put(None)

    def send(self, op: str, **args) -> None:
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float) -> dict:
        try:
            message = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"load generator silent for {timeout}s") from None
        if message is None:
            raise RuntimeError(f"load generator exited with {self.proc.wait()}")
        return message

    def call(self, op: str, timeout: float = 120, **args) -> dict:
        self.send(op, **args)
        return self.reply(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("exit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


class Subscribers:
    """N sockets spread over several worker processes, so one Node thread is not the limit."""

    def __init__(self, workers: int):
        self.workers = [NodeWorker("subscriber.js") for _ in range(workers)]

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]

    def _all(self, op: str, timeout: float = 120, per_worker=None, **args) -> list[dict]:
        for i, worker in enumerate(self.workers):
            worker.send(op, **args, **(per_worker[i] if per_worker else {}))
        return [worker.reply(timeout) for worker in self.workers]

    def connect(self, url: str, count: int, mode: str, channel: str | None, concurrency: int,
                timeout: float = 60) -> dict:
        """Open ``count`` sockets; returns ok, failed and the first start / last ready times (epoch ms)."""
        shares = [count // len(self.workers) + (i < count % len(self.workers)) for i in range(len(self.workers))]
        replies = self._all("connect", timeout + 30, per_worker=[{"count": n} for n in shares], url=url, mode=mode,
                            channel=channel, concurrency=concurrency, timeout_ms=int(timeout * 1000))
        return {"ok": sum(r["ok"] for r in replies), "failed": sum(r["failed"] for r in replies),
                "t_start": min(r["t_start"] for r in replies), "t_end": max(r["t_end"] for r in replies)}

    def reset(self, latency: bool = False) -> None:
        self._all("reset", latency=latency)

    def expect(self, per_socket: int, timeout: float) -> dict:
        """Wait until every socket has ``per_socket`` messages since reset (or the timeout)."""
        replies = self._all("expect", timeout + 30, per_socket=per_socket, timeout_ms=int(timeout * 1000))
        return {"complete": all(r["complete"] for r in replies), "received": sum(r["received"] for r in replies),
                "t_last": max(r["t_last"] for r in replies)}

    def stats(self) -> dict:
        replies = self._all("stats")
        return {"received": sum(r["received"] for r in replies), "open": sum(r["open"] for r in replies),
                "latencies": [x for r in replies for x in r["latencies"]]}

    def close(self) -> None:
        self._all("close")

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


class Publisher(NodeWorker):
    """Publishes over a WebSocket (baselines) or the signed Pusher HTTP API (Tabcast).

    ``concurrency`` publishes are in flight at once. Signed HTTP at full speed (``rate`` 0)
    writes pre-signed requests on raw keep-alive sockets, ``pipeline`` of them in flight per
    socket (so ``concurrency / pipeline`` sockets); its payloads carry the time the requests
    were built, not sent, so latency is only sampled with a ``rate``.
    """

    def __init__(self):
        super().__init__("publisher.js")

    def publish(self, target: dict, count: int, rate: float = 0, concurrency: int = 1,
                duration: float | None = None, timeout: float = 120, pipeline: int = 1) -> dict:
        return self.call("publish", timeout, **target, count=count, rate=rate, concurrency=concurrency,
                         duration_ms=int(duration * 1000) if duration else 0, pipeline=pipeline)
