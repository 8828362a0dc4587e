"""Real processes for end-to-end tests: Tabcast servers and redis-servers on free ports."""

import atexit
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

_temp_dirs: list[str] = []


def temp_dir(prefix: str) -> str:
    """A new directory in the system temp dir (var dirs, redis dirs, server logs), removed when
    the test session ends (tests/conftest.py) or at the latest when this process exits.
    TABCAST_KEEP_TEST_DIRS=1 keeps them for a post-mortem."""
    path = tempfile.mkdtemp(prefix=prefix)
    _temp_dirs.append(path)
    return path


@atexit.register
def remove_temp_dirs() -> None:
    if os.environ.get("TABCAST_KEEP_TEST_DIRS"):
        return
    while _temp_dirs:
        shutil.rmtree(_temp_dirs.pop(), ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``check()`` until it returns a truthy value (for processes we cannot get events from)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class TabcastProcess:
    """``manage.py serve`` in a subprocess with its own var dir (SQLite) unless told otherwise."""

    def __init__(self, *, redis_url: str | None = None, database_url: str | None = None, workers: int = 1,
                 var_dir: str | None = None, port: int | None = None, server: str = "uvicorn",
                 extra_env: dict | None = None):
        self.var_dir = var_dir or temp_dir("tabcast-test-")
        self.port = port or free_port()
        self.workers = workers
        self.server = server
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        self.env.update({"TABCAST_VAR_DIR": self.var_dir, "TABCAST_APP_CACHE_SECONDS": "0",
                         "DJANGO_SETTINGS_MODULE": "service.settings", "PYTHONUNBUFFERED": "1",
                         # SIGTERM spreads the 4200 closes over this window (10 s by default): short
                         # here so stopping a server with sockets open stays fast; drain tests set it.
                         "TABCAST_DRAIN_SECONDS": "1"})
        if redis_url:
            self.env["REDIS_URL"] = redis_url
            # Processes sharing a database are one cluster; other clusters on the same Redis must
            # not see its keys, since every database numbers its apps from 1.
            database = database_url or os.path.join(self.var_dir, "tabcast.sqlite3")
            self.env["TABCAST_REDIS_PREFIX"] = "tc-" + hashlib.sha1(database.encode()).hexdigest()[:10]
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(self.var_dir) / f"server-{self.port}.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def migrate(self) -> None:
        self.manage("migrate", "--noinput")

    def start(self, migrate: bool = True) -> "TabcastProcess":
        if migrate:
            self.migrate()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "manage.py", "serve", "--port", str(self.port), "--workers", str(self.workers),
             "--server", self.server],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(self._healthy, 30, what=f"Tabcast on port {self.port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"Tabcast did not start:\n{self.log()}") from None
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"Tabcast exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.http}/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-6000:]
        except OSError:
            return ""

    def create_app(self, name: str = "test", client_events: bool = False, demo: bool = False, **settings) -> dict:
        app = self.create_apps(1, name, client_events, demo)[0]
        if settings:
            self.update_app(app["app_id"], **settings)
        return app

    def create_apps(self, count: int, name: str = "test", client_events: bool = False,
                    demo: bool = False) -> list[dict]:
        """Create apps in one manage.py run (each run costs a second of Django start-up)."""
        args = ["create_app", name, "--json", "--count", str(count)] + (["--client-events"] if client_events else []) \
            + (["--demo"] if demo else [])
        return [{**app, "host": "127.0.0.1", "port": self.port, "appId": app["app_id"]}
                for app in map(json.loads, self.manage(*args).splitlines())]

    def update_app(self, app_id: int, rotate_secret: bool = False, **settings) -> dict:
        changes = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
        return json.loads(self.manage("update_app", str(app_id), *changes,
                                      *(["--rotate-secret"] if rotate_secret else [])))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Stop the server (whole process group); returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class RedisProcess:
    """A throwaway redis-server (no persistence) that tests may stop and restart."""

    def __init__(self, port: int | None = None):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run bin/test (it installs it) or "
                               "apt-get install redis-server")
        self.binary = binary
        self.port = port or free_port()
        self.dir = temp_dir("tabcast-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisProcess":
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._ping, 10, what=f"redis-server on {self.port}")
        return self

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def redis_reachable(url: str) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False
