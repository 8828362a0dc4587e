"""An in-process fake Stripe API on 127.0.0.1 that records the exact wire requests.

The real ``stripe`` SDK talks to it over HTTP (``STRIPE_API_BASE``), so tests see what billing
really sends (method, path, form body, Idempotency-Key) and how it handles real responses.
It proves our requests and our parsing, not how Stripe itself aggregates or invoices.
"""

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    """One request as it arrived."""

    method: str
    path: str
    query: str
    headers: dict
    body: str

    @property
    def form(self) -> dict:
        """The form-encoded body as {"line_items[0][price]": "price_1", ...}."""
        return dict(parse_qsl(self.body, keep_blank_values=True))

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class FakeStripe:
    """Routes answer with queued responses (the last one repeats); then ``handler``; else a 404."""

    requests: list[Recorded] = field(default_factory=list)
    routes: dict = field(default_factory=dict)
    handler: object = None  # optional callable(Recorded) -> (status, json) or None

    def reply(self, method: str, path: str, *responses: tuple[int, dict]) -> None:
        """Answer ``method path`` with these (status, json) responses in turn."""
        self.routes[(method, path)] = deque(responses)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def _answer(self, request: Recorded) -> tuple[int, dict]:
        queue = self.routes.get((request.method, request.path))
        if queue:
            return queue.popleft() if len(queue) > 1 else queue[0]
        answer = self.handler(request) if self.handler else None
        return answer or (404, error(f"Unrecognized request URL ({request.method}: {request.path})"))


def error(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict:
    """A Stripe error body."""
    return {"error": {"message": message, "type": type_, **({"code": code} if code else {})}}


def serve() -> tuple[FakeStripe, ThreadingHTTPServer]:
    """Start the fake on a free loopback port."""
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Stripe's API

        def setup(self):
            super().setup()
            # Headers and body are two writes: without this, Nagle and delayed ACKs add 40 ms each.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _handle(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            request = Recorded(self.command, url.path, url.query,
                               {k.lower(): v for k, v in self.headers.items()}, body)
            fake.requests.append(request)
            status, payload = fake._answer(request)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_fake_{len(fake.requests)}")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
