"""Servers, budgets and the liveness witness shared by the fuzz properties.

Budget: every property runs a fixed number of examples (``FUZZ_SCALE`` multiplies them, e.g.
``TABCAST_FUZZ_SCALE=10`` for a long local run), derandomized and without an example
database, so CI runs the same inputs every time and a failure reproduces exactly.
"""

import json
import os
import time
import urllib.error
import urllib.request
import uuid

import pytest
import websockets.sync.client
from hypothesis import HealthCheck, Phase, settings

from tests.support.processes import TabcastProcess

MAX_MESSAGE_BYTES = 10 * 1024  # the app's limit (the default), set explicitly: the oracle needs it
SCALE = float(os.environ.get("TABCAST_FUZZ_SCALE", "1"))


def budget(examples: int, **overrides) -> settings:
    """Hypothesis settings for one property: ``examples`` inputs (times TABCAST_FUZZ_SCALE)."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,  # every example does network round trips; time is bounded per test instead
        derandomize=True,  # the same inputs on every run: CI is reproducible
        database=None,  # no .hypothesis/ directory, no replay of a developer's old failures
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        print_blob=True,
        **overrides,
    )


class FuzzServer:
    """A Tabcast process, an app on it (client events on) and a view of its log."""

    def __init__(self, process: TabcastProcess, app: dict):
        self.process, self.app = process, app
        self.port = process.port
        self._log_mark = 0

    @property
    def http(self) -> str:
        return self.process.http

    @property
    def ws(self) -> str:
        return self.process.ws

    def alive(self) -> None:
        code = self.process.proc.poll()
        assert code is None, f"the server exited with {code}:\n{self.process.log()}"

    def mark_log(self) -> None:
        self._log_mark = self._log_size()

    def _log_size(self) -> int:
        try:
            return self.process.log_path.stat().st_size
        except OSError:
            return 0

    def new_log(self) -> str:
        with open(self.process.log_path, "rb") as log:
            log.seek(self._log_mark)
            return log.read().decode("utf-8", "replace")

    def assert_quiet_log(self) -> None:
        """No traceback was logged since ``mark_log`` (which moves on): bad input is answered, not crashed on."""
        text = self.new_log()
        self.mark_log()
        if "Traceback" in text:
            start = text.index("Traceback")
            context = text[max(0, text.rfind("\n", 0, max(0, start - 200))):start + 2500]
            raise AssertionError(f"the server logged a traceback while handling fuzz input:\n{context}")


def _start(extra_env: dict | None = None) -> FuzzServer:
    process = TabcastProcess(extra_env=extra_env).start()
    app = process.create_app("fuzz", client_events=True, max_message_bytes=MAX_MESSAGE_BYTES)
    return FuzzServer(process, {**app, "max_message_bytes": MAX_MESSAGE_BYTES})


@pytest.fixture(scope="package")
def fuzz_server():
    """Embedded mode, the publish endpoints on the event-loop fast path (the default)."""
    server = _start()
    yield server
    server.process.stop()


@pytest.fixture(scope="package")
def fuzz_server_drf():
    """The same, with the publish endpoints served by Django/DRF (TABCAST_FAST_PUBLISH=0)."""
    server = _start({"TABCAST_FAST_PUBLISH": "0"})
    yield server
    server.process.stop()


def publish(server: FuzzServer, channel: str, event: str, data) -> int:
    import base64

    token = base64.b64encode(f"{server.app['key']}:{server.app['secret']}".encode()).decode()
    request = urllib.request.Request(
        f"{server.http}/publish", method="POST",
        data=json.dumps({"channel": channel, "event": event, "data": data}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class Liveness:
    """A healthy subscriber on the fuzzed app: after each batch of fuzz input it must still
    receive a marker publish (a positive signal that the process serves, not just that it runs)."""

    CHANNEL = "fuzz-liveness-witness"

    def __init__(self, server: FuzzServer):
        self.server = server
        self.ws = websockets.sync.client.connect(f"{server.ws}/app/{server.app['key']}?protocol=7",
                                                 open_timeout=10, max_size=None, legacy=True)  # held open, not a `with`
        established = json.loads(self.ws.recv(timeout=10))
        assert established["event"] == "pusher:connection_established", established
        self.ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": self.CHANNEL}}))
        reply = json.loads(self.ws.recv(timeout=10))
        assert reply["event"] == "pusher_internal:subscription_succeeded", reply
        self.checks = 0

    def begin(self) -> None:
        """Start of one example: only what the server logs from now on is this example's."""
        self.server.mark_log()

    def check(self, timeout: float = 10) -> None:
        """The process runs, logged no traceback, and still delivers to this subscriber."""
        self.server.alive()
        self.server.assert_quiet_log()
        marker = uuid.uuid4().hex
        # Also a protocol ping, so the witness never looks idle to the server's activity sweep.
        self.ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
        status = publish(self.server, self.CHANNEL, "liveness", {"marker": marker})
        assert status == 200, f"the liveness publish was answered {status}"
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("the witness subscriber stopped receiving: the server stalled")
            try:
                frame = json.loads(self.ws.recv(timeout=remaining))
            except TimeoutError:
                continue
            if frame.get("event") == "liveness" and marker in frame.get("data", ""):
                self.checks += 1
                return

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def liveness(fuzz_server):
    """A witness subscriber for one property (its log is checked from here on)."""
    fuzz_server.mark_log()
    witness = Liveness(fuzz_server)
    yield witness
    witness.check()
    witness.close()



@pytest.fixture
def liveness_drf(fuzz_server_drf):
    """The same witness on the DRF-path server."""
    fuzz_server_drf.mark_log()
    witness = Liveness(fuzz_server_drf)
    yield witness
    witness.check()
    witness.close()
