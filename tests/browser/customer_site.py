"""A customer's web site on another origin: a page that includes Tabcast with one
<script> tag, and the customer's own backend auth endpoints (which hold the app secret,
as a real customer backend does; the browser never sees it)."""

import base64
import json
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from service.realtime import signatures
from tests.support.clients import python_backend

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Customer tab</title></head>
<body>
<p id="status">loading</p>
<script src="{tabcast}/sdk/v1/tabcast.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  if (params.get('user')) document.cookie = 'user=' + params.get('user') + '; path=/';
  if (params.get('watch')) document.cookie = 'watch=' + params.get('watch') + '; path=/';  // watchlist ids
  window.received = [];
  window.restoredFromCache = false;
  addEventListener('pageshow', (e) => {{ if (e.persisted) window.restoredFromCache = true; }});
  window.states = [];
  const options = {{ authEndpoint: '/pusher/auth', userAuthentication: {{ endpoint: '/pusher/user-auth' }},
                    backoff: {{ min: 200, max: 2000 }} }};
  if (params.get('transport')) options.transport = params.get('transport');
  if (params.get('workerUrl')) options.workerUrl = params.get('workerUrl');
  window.tabcast = new Tabcast(params.get('key'), options);
  tabcast.connection.bind('state_change', (s) => {{
    states.push(s.current);
    document.getElementById('status').textContent = s.current;
  }});
  // Subscribe and record every event of `name` (and the subscription outcome).
  window.listen = (name) => {{
    const channel = tabcast.subscribe(name);
    channel.bind_global((event, data, meta) => received.push({{ channel: name, event, data, meta }}));
    return name;
  }};
  window.eventsOf = (name, event) => received.filter((r) => r.channel === name && r.event === event);
</script>
</body></html>
"""

# The one-line worker a customer may host on their own origin instead of using the iframe.
WORKER_STUB = "importScripts('{tabcast}/sdk/v1/worker.js' + self.location.search);\n"

# The customer's end-to-end encryption master key (private-encrypted-* channels).
ENCRYPTION_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


def encrypting_backend(app: dict):
    """The official server library, set up to encrypt for private-encrypted-* channels."""
    return python_backend(app, encryption_master_key_base64=ENCRYPTION_MASTER_KEY)


# A worker from another SDK release, speaking a tab/hub protocol this page does not know.
FUTURE_WORKER = """
onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = () => port.postMessage({ t: 'mismatch', v: 999 });
};
"""


class CustomerSite:
    """Serves /tab.html?key=&transport=&workerUrl=&user=, a worker stub, and the auth endpoints for one app."""

    def __init__(self, tabcast_http: str, app: dict, host: str = "127.0.0.1"):
        self.tabcast_http = tabcast_http
        self.app = app  # the customer's app: key and secret
        self.host = host
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                path = urlparse(self.path).path
                if path == "/tab.html":
                    self._send(200, "text/html; charset=utf-8", PAGE.format(tabcast=site.tabcast_http).encode())
                elif path == "/away.html":  # somewhere to navigate to (bfcache tests)
                    self._send(200, "text/html; charset=utf-8", b"<!doctype html><title>Away</title><p>away</p>")
                elif path == "/tabcast-worker.js":
                    self._send(200, "text/javascript", WORKER_STUB.format(tabcast=site.tabcast_http).encode())
                elif path == "/future-worker.js":
                    self._send(200, "text/javascript", FUTURE_WORKER.encode())
                else:
                    self._send(404, "text/plain", b"not found")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                cookie = SimpleCookie(self.headers.get("Cookie") or "")
                user = cookie["user"].value if "user" in cookie else None
                path = urlparse(self.path).path
                result = site.authorize(path, form, user, cookie["watch"].value if "watch" in cookie else None)
                if result is None:
                    return self._send(403, "application/json", b'{"error":"forbidden"}')
                self._send(200, "application/json", json.dumps(result).encode())

            def _send(self, status, content_type, body):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, **query) -> str:
        from urllib.parse import urlencode

        return f"{self.origin}/tab.html?{urlencode(query)}"

    def authorize(self, path: str, form: dict, user: str | None, watch: str | None = None) -> dict | None:
        """What a customer backend does: sign for the logged-in user (from its cookie)."""
        socket_id = form.get("socket_id", "")
        app = self.app
        if path == "/pusher/auth":
            channel = form.get("channel_name", "")
            if channel.startswith("private-forbidden"):
                return None
            if channel.startswith("private-encrypted-"):  # the library derives the shared secret
                result = encrypting_backend(app).authenticate(channel, socket_id)
                return {k: v.decode() if isinstance(v, bytes) else v for k, v in result.items()}
            channel_data = None
            if channel.startswith("presence-"):
                if user is None:
                    return None
                channel_data = json.dumps({"user_id": user, "user_info": {"name": user.title()}})
            message = signatures.channel_auth_message(socket_id, channel, channel_data)
            result = {"auth": f"{app['key']}:{signatures.sign(app['secret'], message)}"}
            if channel_data:
                result["channel_data"] = channel_data
            return result
        if path == "/pusher/user-auth" and user is not None:
            user_data = {"id": user, "user_info": {"name": user.title()}}
            if watch:
                user_data["watchlist"] = watch.split(",")
            user_data = json.dumps(user_data)
            message = signatures.user_auth_message(socket_id, user_data)
            return {"auth": f"{app['key']}:{signatures.sign(app['secret'], message)}", "user_data": user_data}
        return None

    def start(self) -> "CustomerSite":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
