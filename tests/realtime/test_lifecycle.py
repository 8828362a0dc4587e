"""Connections leave nothing behind, quotas hold, and shutdown tells clients to reconnect at once."""

import asyncio
import re
import signal
import urllib.request

import pytest

from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient
from service.realtime import signatures


def metrics(server) -> dict[str, int]:
    with urllib.request.urlopen(server.http + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(tabcast_\w+)\{[^}]*\} (\d+)(?:\.0)?$", text, re.M)}  # prometheus_client: "6.0"


@pytest.fixture(scope="module")
def lonely():
    """A server of its own, so process-wide numbers belong to this module's tests only."""
    server = TabcastProcess().start()
    yield server
    server.stop()


async def _busy_client(server, app, n):
    client = await RawClient.established(server, app["key"])
    await client.subscribe(f"room-{n % 3}")
    await client.subscribe("shared")
    channel_data = f'{{"user_id":"u{n % 2}"}}'
    auth = f"{app['key']}:{signatures.sign(app['secret'], f'{client.socket_id}:presence-p:{channel_data}')}"
    assert (await client.subscribe("presence-p", auth=auth, channel_data=channel_data))["event"].endswith("succeeded")
    user_data = '{"id":"s"}'
    signature = signatures.sign(app["secret"], signatures.user_auth_message(client.socket_id, user_data))
    await client.send({"event": "pusher:signin", "data": {"auth": f"{app['key']}:{signature}", "user_data": user_data}})
    await client.recv_event("pusher:signin_success")
    return client


async def test_no_state_left_after_clean_and_abrupt_disconnects(lonely):
    from tests.realtime.test_http_api import http, signed

    app = lonely.create_app("leaks")
    clients = [await _busy_client(lonely, app, n) for n in range(6)]
    during = metrics(lonely)
    assert during["tabcast_connections"] == 6 and during["tabcast_local_channels"] == 6
    assert during["tabcast_groups_joined"] == 6  # one per channel, not one per socket

    for client in clients[:3]:
        await client.send({"event": "pusher:unsubscribe", "data": {"channel": "shared"}})
        await client.close()
    for client in clients[3:]:
        client.ws.transport.abort()  # no close frame: the TCP connection just dies

    async def drained():
        while metrics(lonely)["tabcast_connections"]:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(drained(), 10)
    after = metrics(lonely)
    assert after == {**after, "tabcast_connections": 0, "tabcast_local_channels": 0,
                     "tabcast_groups_joined": 0, "tabcast_logical_clients": 0}
    status, body = http(lonely, "GET", signed(app, "GET", f"/apps/{app['app_id']}/channels"))
    assert (status, body) == (200, {"channels": {}})
    status, body = http(lonely, "GET", signed(app, "GET", f"/apps/{app['app_id']}/channels/presence-p/users"))
    assert body == {"users": []}


async def test_connection_quota_is_4004(lonely):
    app = lonely.create_app("quota")
    lonely.manage("shell", "-c", (
        "from billing.models import Plan, Subscription; from tenants.models import App; "
        f"a = App.objects.get(id={app['app_id']}); "
        "p = Plan.objects.create(code='tiny-%d' % a.id, name='Tiny', max_connections=2); "
        "Subscription.objects.update_or_create(tenant=a.tenant, defaults={'plan': p})"))
    first = await RawClient.established(lonely, app["key"])
    await RawClient.established(lonely, app["key"])
    over = await RawClient.connect(lonely, app["key"])
    error = await over.recv()
    assert error["data"]["code"] == 4004 and "quota" in error["data"]["message"]
    assert (await over.closed())[0] == 4004
    await first.ping_pong()


async def test_sigterm_closes_sockets_with_4200():
    server = TabcastProcess().start()
    app = server.create_app("restart")
    clients = [await RawClient.established(server, app["key"]) for _ in range(3)]
    server.proc.send_signal(signal.SIGTERM)
    for client in clients:
        assert (await client.closed(timeout=10))[0] == 4200
    # uvicorn re-raises the signal after its graceful shutdown, so "killed by SIGTERM" is a clean exit.
    assert await asyncio.to_thread(server.proc.wait, 15) in (0, -signal.SIGTERM)
