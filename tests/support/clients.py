"""Drive the real Pusher client libraries from tests.

``PusherJs``: one pusher-js 8 client in a Node process (tests/js/pusherjs_client.mjs); every
event it sees arrives here as a dict, and tests wait for the ones they expect.
``node_backend``: one call of the official `pusher` Node server library.
``python_backend``: the official `pusher` PyPI client pointed at a Tabcast server.
"""

import json
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: bin/test needs Node 20 for the pusher-js tests")
    if not (JS_DIR / "node_modules" / "pusher-js").exists():
        raise RuntimeError("tests/js/node_modules is missing: run bin/test (it runs npm ci there)")
    return node


def _matches(message: dict, match: dict) -> bool:
    return all(message.get(k) == v for k, v in match.items())


class PusherJs:
    def __init__(self, app: dict, **options):
        config = {"key": app["key"], "secret": app["secret"], "host": app["host"], "port": app["port"],
                  "appId": app["app_id"], **options}
        self.proc = subprocess.Popen([node_binary(), str(JS_DIR / "pusherjs_client.mjs"), json.dumps(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.messages: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.socket_id: str | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.messages.put(json.loads(line))
            except json.JSONDecodeError:
                self.messages.put({"type": "noise", "line": line})
        self.messages.put({"type": "exited"})

    def send(self, op: str, **args) -> None:
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()

    def wait_for(self, timeout: float = 10, **match) -> dict:
        """The first message (seen before or arriving within ``timeout``) whose fields match."""
        for message in self.seen:
            if _matches(message, match):
                self.seen.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"pusher-js never reported {match}; saw {self.seen[-15:]}")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if message.get("type") == "state" and message.get("socket_id"):
                self.socket_id = message["socket_id"]
            if _matches(message, match):
                return message
            self.seen.append(message)

    def assert_none_before(self, marker: dict, *forbidden: dict, timeout: float = 10) -> dict:
        """Wait for ``marker``, then assert that no message matching any of ``forbidden`` came
        before it; returns the marker.

        The marker must be sent *after* whatever must not have happened, along the path a wrong
        message would have taken (the same socket, behind it in the server's queues), e.g. a
        publish on the same channel once the action is known to be processed. Then a wrong
        message, had it been sent, is read before the marker: no sleep, no guessing how long.
        """
        index = next((i for i, m in enumerate(self.seen) if _matches(m, marker)), None)
        if index is not None:
            before, found = self.seen[:index], self.seen.pop(index)
        else:
            found = self.wait_for(timeout, **marker)  # stores everything read before it in self.seen
            before = list(self.seen)
        for match in forbidden:
            wrong = [m for m in before if _matches(m, match)]
            if wrong:
                raise AssertionError(f"unexpected {wrong[0]} (before the marker {marker})")
        return found

    def assert_none_seen(self, **match) -> None:
        """No matching message arrived before the one last waited for (a marker sent after it).

        Messages of one connection arrive in order, so whatever came before the marker is already
        in ``seen``; nothing is waited for here."""
        unexpected = [m for m in self.seen if all(m.get(k) == v for k, v in match.items())]
        assert not unexpected, f"unexpected messages before the marker: {unexpected}"

    def connected(self, timeout: float = 10) -> "PusherJs":
        self.wait_for(timeout, type="state", current="connected")
        return self

    def subscribe(self, channel: str, timeout: float = 10, **args) -> dict:
        self.send("subscribe", channel=channel, **args)
        return self.wait_for(timeout, type="subscribed", channel=channel)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("exit")
                self.proc.wait(3)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


def node_backend(app: dict, op: str, **call) -> dict:
    """Run one call of the `pusher` npm library; returns {"status", "body"} or {"status", "error"}."""
    config = {"key": app["key"], "secret": app["secret"], "host": app["host"], "port": app["port"],
              "appId": app["app_id"]}
    result = subprocess.run([node_binary(), str(JS_DIR / "pusher_backend.mjs"), json.dumps(config),
                             json.dumps({"op": op, **call})], capture_output=True, text=True, timeout=30)
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"pusher_backend.mjs failed: {result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def python_backend(app: dict, **options):
    import pusher

    return pusher.Pusher(app_id=str(app["app_id"]), key=app["key"], secret=app["secret"], host=app["host"],
                         port=app["port"], ssl=False, **options)
