"""A customer's webhook endpoint for tests: a local HTTP server that records what Tabcast POSTs."""

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver:
    """Records every request it answers with ``status``; the first ``fail_first`` get a 500 and
    are not recorded (a retry must bring them)."""

    def __init__(self, status: int = 200, fail_first: int = 0):
        self.requests: queue.Queue = queue.Queue()
        self.status, self.fail_first = status, fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                else:
                    receiver.requests.put((dict(self.headers), body))
                    self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def next_event(self, timeout: float = 10) -> tuple[dict, bytes, dict]:
        """(headers, raw body, the one event) of the next request."""
        headers, body = self.requests.get(timeout=timeout)
        payload = json.loads(body)
        assert len(payload["events"]) == 1 and isinstance(payload["time_ms"], int)
        return headers, body, payload["events"][0]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
