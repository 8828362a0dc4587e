"""The servers under test, each started fresh in its own process group on a free port.

Every server answers the same two questions for the load generator: where subscribers
connect (and in which protocol) and how the publisher reaches it.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.processes import ROOT, RedisProcess, TabcastProcess, free_port, wait_until

from . import procstats

CHANNEL = "bench"

# Tabcast's per-app HTTP rate limit (2,000/s) is a product policy, not what a process can do;
# the bench lifts it to measure the process. App settings are cached as in production.
# Product policies that a load from one loopback address would trip are lifted: the bench measures
# what a process can do (per-app HTTP rate, sockets and connects per client IP).
TABCAST_BENCH_ENV = {"TABCAST_HTTP_RATE_PER_APP": "1000000", "TABCAST_APP_CACHE_SECONDS": "5",
                     "TABCAST_LOG_LEVEL": "WARNING",
                     "TABCAST_MAX_SOCKETS_PER_IP": "0", "TABCAST_CONNECTS_PER_IP_PER_SECOND": "0"}


class _Subprocess:
    """A baseline server: ``python -m <module> --port P`` in its own session."""

    mode = "plain"

    def __init__(self, label: str, module: str, *args: str):
        self.label, self.port = label, free_port()
        self.command = [sys.executable, "-m", module, "--port", str(self.port), *args]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = open(Path(tempfile.mkdtemp(prefix="tabcast-bench-")) / "server.log", "wb")
        self.proc = subprocess.Popen(self.command, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wait_until(self._listening, 30, what=f"{self.label} on port {self.port}")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.label} exited: {Path(self.log.name).read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def pids(self) -> list[int]:
        return procstats.tree(self.proc.pid)

    def subscribe_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/sub"

    def publish_target(self) -> dict:
        return {"mode": "ws", "url": f"ws://127.0.0.1:{self.port}/pub", "channel": CHANNEL}

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def raw_websockets() -> _Subprocess:
    return _Subprocess("raw websockets (a)", "bench.raw_server")


def naive_channels(server: str = "uvicorn") -> _Subprocess:
    return _Subprocess(f"naive Channels (b) {server}", "bench.naive", "--server", server)


class Tabcast:
    """``manage.py serve`` (uvicorn or daphne, N workers, optional Redis) with one bench app."""

    mode = "pusher"

    def __init__(self, server: str = "uvicorn", workers: int = 1, redis: bool = False):
        self.label = f"Tabcast {server}" + (f" {workers}p+Redis" if redis else "")
        self.server, self.workers, self.use_redis = server, workers, redis
        self.redis: RedisProcess | None = None
        self.process: TabcastProcess | None = None

    def start(self) -> None:
        if self.use_redis:
            self.redis = RedisProcess().start()
        self.process = TabcastProcess(server=self.server, workers=self.workers, extra_env=TABCAST_BENCH_ENV,
                                      redis_url=self.redis.url if self.redis else None)
        # The app exists before the server starts: nothing else writes the database meanwhile.
        self.process.migrate()
        self.app, self.neighbour = self.process.create_apps(2, "bench")  # neighbour: another tenant's app
        self.process.start(migrate=False)

    def pids(self) -> list[int]:
        pids = procstats.tree(self.process.proc.pid)
        return pids + ([self.redis.proc.pid] if self.redis else [])

    def subscribe_url(self, app: dict | None = None) -> str:
        return f"{self.process.ws}/app/{(app or self.app)['key']}?protocol=7&client=bench&version=1"

    def publish_target(self, app: dict | None = None) -> dict:
        return {"mode": "http", "host": "127.0.0.1", "port": self.process.port, "app": app or self.app,
                "channel": CHANNEL}

    def stop(self) -> None:
        if self.process:
            self.process.stop()
        if self.redis:
            self.redis.stop()

