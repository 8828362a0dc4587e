"""Recovery's counters end to end (billing/METERING.md, docs/recovery.md): real resumes on a real
server are counted once each, recovered or not, with the messages written to history, through
the node's flush into the live totals, the persisted rollups, the usage API and the usage page."""

import json
import time
import urllib.parse
import urllib.request

from service.realtime import signatures
from tests.support.clients import python_backend

from .support import DashboardSession, SharedWorkerSocket

RECOVERY = ("resumes_recovered", "resumes_unrecovered", "stored_messages")


def history_positions(server, app: dict, channel: str) -> list[str]:
    """The positions of the channel's messages, from the signed history API."""
    path = f"/apps/{app['app_id']}/channels/{channel}/history"
    query = {"auth_key": app["key"], "auth_timestamp": str(int(time.time())), "auth_version": "1.0"}
    query["auth_signature"] = signatures.sign(app["secret"], signatures.request_string_to_sign("GET", path, query))
    with urllib.request.urlopen(f"{server.http}{path}?{urllib.parse.urlencode(query)}", timeout=10) as response:
        return [m["position"] for m in json.loads(response.read())["messages"]]


def resume(socket: SharedWorkerSocket, channel: str, position: str) -> dict:
    """Subscribe from ``position``; the data of the tabcast:resumed that ends the replay."""
    socket.send({"event": "pusher:subscribe", "data": {"channel": channel, "position": position}})
    while True:
        frame = socket.recv()
        if frame["event"] == "tabcast:resumed" and frame["channel"] == channel:
            return json.loads(frame["data"])


def test_resumes_and_stored_messages_are_counted_and_shown(tabcast, app):
    owner = DashboardSession.owner_of(tabcast, app["app_id"], f"recovery-{app['app_id']}@metering.test")
    backend = python_backend(app)
    for i in range(3):
        backend.trigger(["orders"], "tick", {"i": i})
    positions = history_positions(tabcast, app, "orders")
    assert len(positions) == 3

    socket = SharedWorkerSocket(tabcast, app["key"], tabs=1)
    assert resume(socket, "orders", positions[0]) == {"recovered": True, "missed": 2}
    epoch, _, offset = positions[0].partition(":")
    other_epoch = "0" if epoch != "0" else "1"
    lost = resume(socket, "news", f"{other_epoch}:{offset}")
    assert lost["recovered"] is False and lost["missed"] == 0
    socket.close()

    counted = {"resumes_recovered": 1, "resumes_unrecovered": 1, "stored_messages": 3}
    totals = owner.wait_for_totals(app["app_id"], counted)
    assert {k: totals[k] for k in RECOVERY} == counted
    assert totals["stored_bytes"] >= 3 * len('{"i": 0}')

    summary = owner.wait_for_usage(app["app_id"], counted)
    assert {k: summary[k] for k in RECOVERY} == counted
    assert summary["stored_bytes"] == totals["stored_bytes"]

    page = owner.get(f"/dashboard/apps/{app['app_id']}/usage/")
    assert 'id="kpi-resumes-recovered">1<' in page and 'id="kpi-resumes-unrecovered">1<' in page
    assert 'id="kpi-stored-messages">3<' in page
