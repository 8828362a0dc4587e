"""Tenants on made-up plans in a live server, and the HTTP/WebSocket calls the quota tests make."""

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.metering.support import DashboardSession
from tests.support.raw import RawClient

_TENANT_ON_PLAN = """
import json
from billing.models import Plan, Subscription
from tenants.models import Tenant
from tenants import services
plan, _ = Plan.objects.update_or_create(code={code!r}, defaults=dict(
    name={code!r}, max_connections=100, max_messages_per_day={messages!r}, max_connects_per_second={connects!r},
    max_client_events_per_second={client_events!r}))
tenant = Tenant.objects.create(name={code!r} + " team")
Subscription.objects.create(tenant=tenant, plan=plan)
app = services.create_app({code!r} + " app", tenant=tenant, client_events=True, webhook_url={webhook!r})
print(json.dumps({{"app_id": app.id, "key": app.key, "secret": app.secret, "tenant_id": tenant.id}}))
"""


def tenant_on_plan(server, code: str, *, messages: int | None = None, connects: int | None = None,
                   client_events: int | None = None, webhook: str = "") -> dict:
    """A new tenant subscribed to a new plan ``code`` with these quotas, and one app (client events on)."""
    out = server.manage("shell", "-c", _TENANT_ON_PLAN.format(code=code, messages=messages, connects=connects,
                                                             client_events=client_events, webhook=webhook))
    app = json.loads(out.strip().splitlines()[-1])
    return {**app, "host": "127.0.0.1", "port": server.port, "appId": app["app_id"]}


def post(server, path: str, body: dict, headers: dict) -> tuple[int, dict, dict]:
    """(status, JSON body, headers: case-insensitive) of a POST, error statuses included."""
    request = urllib.request.Request(server.http + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def simple_publish(server, app: dict, channel: str, event: str = "tick", data: str = "x"):
    """``POST /publish`` with HTTP Basic key:secret."""
    basic = base64.b64encode(f"{app['key']}:{app['secret']}".encode()).decode()
    return post(server, "/publish", {"channel": channel, "event": event, "data": data},
                {"Authorization": f"Basic {basic}"})


def signed_post(server, app: dict, path: str, body: dict):
    """A Pusher-signed POST (``/apps/{id}/events`` or ``batch_events``), as the server libraries sign it."""
    raw = json.dumps(body).encode()
    params = {"auth_key": app["key"], "auth_timestamp": str(int(time.time())), "auth_version": "1.0",
              "body_md5": hashlib.md5(raw).hexdigest()}
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    signature = hmac.new(app["secret"].encode(), f"POST\n{path}\n{query}".encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{server.http}{path}?{query}&auth_signature={signature}", data=raw,
                                     method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def channel_auth(app: dict, socket_id: str, channel: str, channel_data: str | None = None) -> str:
    message = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return f"{app['key']}:{hmac.new(app['secret'].encode(), message.encode(), hashlib.sha256).hexdigest()}"


async def subscriber(server, app: dict, channel: str, user_id: str | None = None) -> RawClient:
    """An established raw socket subscribed to ``channel`` (signed for private/presence channels)."""
    client = await RawClient.established(server, app["key"])
    data = {}
    if channel.startswith("presence-"):
        data["channel_data"] = json.dumps({"user_id": user_id})
        data["auth"] = channel_auth(app, client.socket_id, channel, data["channel_data"])
    elif channel.startswith("private-"):
        data["auth"] = channel_auth(app, client.socket_id, channel)
    answer = await client.subscribe(channel, **data)
    assert answer["event"] == "pusher_internal:subscription_succeeded", answer
    return client


async def frames_until_pong(client: RawClient, timeout: float = 5) -> list[dict]:
    """Every frame the server sent before answering a ping sent now (frames are in order)."""
    await client.send({"event": "pusher:ping", "data": {}})
    frames = []
    while True:
        frame = await client.recv(timeout)
        if frame.get("event") == "pusher:pong":
            return frames
        frames.append(frame)


class WebhookRecorder:
    """A local HTTP server that answers 200 to every webhook and keeps the events."""

    def __init__(self):
        self.events: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.events.extend(json.loads(body)["events"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


QUOTA = re.compile(r'id="message-quota" data-used="(\d+)" data-limit="(\d*)"\s+data-percent="([\d.]*)"')


def quota_shown(owner: DashboardSession, app_id: int, page: str = "overview") -> dict:
    """What the dashboard shows: messages used today, the quota, the share used (%)."""
    path = f"/dashboard/apps/{app_id}/overview/" if page == "overview" else "/dashboard/billing/"
    html = owner.get(path)
    used, limit, percent = QUOTA.search(html).groups()
    return {"used": int(used), "limit": int(limit) if limit else None,
            "percent": float(percent) if percent else None, "html": html}
