"""The Pusher HTTP API and /publish: queries, limits, signing failures, JSON errors."""

import base64
import json
import time
import urllib.error
import urllib.request

import pusher
import pytest

from service.realtime import signatures
from tests.conftest import fresh_app
from tests.support.clients import node_backend, python_backend
from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient


@pytest.fixture(scope="module", params=["fast-path", "django-drf"])
def tabcast(request):
    """Each test runs against both ways the publish endpoints are served (service/api/fast.py)."""
    server = TabcastProcess(extra_env={"TABCAST_FAST_PUBLISH": "1" if request.param == "fast-path" else "0"})
    yield server.start()
    server.stop()


@pytest.fixture
def app(tabcast):
    return fresh_app(tabcast)


def http(server, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    request = urllib.request.Request(server.http + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def signed(app, method, path, body=b"", params=None, secret=None, timestamp=None, md5=None):
    """Sign a request exactly like the Pusher libraries, with knobs to break it."""
    query = {"auth_key": app["key"], "auth_timestamp": str(timestamp or int(time.time())), "auth_version": "1.0",
             **(params or {})}
    if body or md5:
        query["body_md5"] = md5 or signatures.body_md5(body)
    to_sign = signatures.request_string_to_sign(method, path, query)
    query["auth_signature"] = signatures.sign(secret or app["secret"], to_sign)
    return path + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_channel_queries_with_the_python_library(app, pusherjs):
    a, b = pusherjs(app).connected(), pusherjs(app).connected()
    a.subscribe("room-1")
    b.subscribe("room-1")
    a.subscribe("presence-lobby", user_id="a", user_info={})
    b.subscribe("presence-lobby", user_id="b", user_info={})
    client = python_backend(app)
    assert client.channels_info()["channels"]["room-1"]["subscription_count"] == 2
    presence = client.channels_info(prefix_filter="presence-", attributes=["user_count"])["channels"]
    assert list(presence) == ["presence-lobby"] and presence["presence-lobby"]["user_count"] == 2
    assert client.channel_info("room-1", ["subscription_count"]) == {"occupied": True, "subscription_count": 2}
    assert client.channel_info("presence-lobby", ["user_count"])["user_count"] == 2
    assert client.channel_info("empty-room") == {"occupied": False, "subscription_count": 0}
    with pytest.raises(pusher.errors.PusherBadRequest):
        client.users_info("room-1")  # users only exist on presence channels


def test_channel_queries_with_the_node_library(app, pusherjs):
    a = pusherjs(app).connected()
    a.subscribe("presence-x", user_id=9, user_info={})
    result = node_backend(app, "get", path="/channels/presence-x/users")
    assert result["status"] == 200 and result["body"] == {"users": [{"id": 9}]}
    result = node_backend(app, "get", path="/channels", params={"filter_by_prefix": "presence-",
                                                                 "info": "user_count"})
    assert result["body"]["channels"] == {"presence-x": {"subscription_count": 1, "user_count": 1}}


def test_trigger_with_info_returns_counts_and_excludes_socket_id(app, pusherjs):
    a, b = pusherjs(app).connected(), pusherjs(app).connected()
    a.subscribe("info-room")
    b.subscribe("info-room")
    result = node_backend(app, "trigger", channels=["info-room"], event="e", data={},
                          params={"info": "subscription_count", "socket_id": a.socket_id})
    assert result["body"] == {"channels": {"info-room": {"subscription_count": 2}}}
    b.wait_for(type="event", event="e")
    node_backend(app, "trigger", channels=["info-room"], event="after", data={})
    a.assert_none_before({"type": "event", "event": "after"}, {"type": "event", "event": "e"})


def test_user_count_needs_presence_prefix(tabcast, app):
    status, body = http(tabcast, "GET", signed(app, "GET", f"/apps/{app['app_id']}/channels",
                                               params={"info": "user_count"}))
    assert status == 400 and "presence-" in body["error"] and body["code"] == 400


@pytest.mark.parametrize("breakage,message", [
    ({"secret": "not-the-secret"}, "Invalid signature"),
    ({"timestamp": int(time.time()) - 700}, "Timestamp expired"),
    ({"md5": "0" * 32}, "body_md5"),
])
def test_signing_failures_are_401_and_nothing_is_published(tabcast, app, pusherjs, breakage, message):
    listener = pusherjs(app).connected()
    listener.subscribe("guarded")
    body = json.dumps({"name": "evil", "channel": "guarded", "data": "{}"}).encode()
    path = f"/apps/{app['app_id']}/events"
    status, error = http(tabcast, "POST", signed(app, "POST", path, body, **breakage), body)
    assert status == 401 and message in error["error"]
    python_backend(app).trigger("guarded", "good", {})
    listener.assert_none_before({"type": "event", "event": "good"}, {"type": "event", "event": "evil"})


def test_wrong_auth_key_is_401(tabcast, app):
    other = tabcast.create_app("other")
    path = f"/apps/{app['app_id']}/channels"
    status, error = http(tabcast, "GET", signed({**other, "app_id": app["app_id"]}, "GET", path))
    assert status == 401 and "auth_key" in error["error"]


def test_unknown_app_is_401_like_a_bad_signature(tabcast, app):
    # Not 404: app ids must not be enumerable (issue 9; tests/realtime/test_hardening_input.py).
    status, error = http(tabcast, "GET", signed(app, "GET", "/apps/999999/channels"))
    assert status == 401 and error["error"].startswith("Invalid signature: expected HMAC-SHA256 hex digest of GET")


@pytest.mark.parametrize("body,status,fragment", [
    ({"name": "e", "channels": [f"c{i}" for i in range(101)], "data": "{}"}, 400, "At most 100 channels"),
    ({"name": "e", "channel": "bad channel", "data": "{}"}, 400, "Channel name may contain"),
    ({"name": "e" * 201, "channel": "c", "data": "{}"}, 400, "name"),
    ({"name": "pusher:fake", "channel": "c", "data": "{}"}, 400, "reserved"),
    ({"channel": "c", "data": "{}"}, 400, "name"),
    ({"name": "e", "data": "{}"}, 400, "channels"),
    ({"name": "e", "channel": "c", "data": "x" * 10241}, 413, "limit for this app is 10240"),
    ({"name": "e", "channels": ["private-encrypted-a", "b"], "data": "{}"}, 400, "Encrypted"),
    ({"name": "e", "channel": "c", "data": "{}", "socket_id": "abc"}, 400, "socket_id"),
])
def test_event_validation(tabcast, app, body, status, fragment):
    raw = json.dumps(body).encode()
    got_status, error = http(tabcast, "POST", signed(app, "POST", f"/apps/{app['app_id']}/events", raw), raw)
    assert got_status == status and fragment in error["error"] and error["code"] == status


def test_batch_limits(tabcast, app):
    batch = {"batch": [{"name": "e", "channel": f"c{i}", "data": "{}"} for i in range(11)]}
    raw = json.dumps(batch).encode()
    status, error = http(tabcast, "POST", signed(app, "POST", f"/apps/{app['app_id']}/batch_events", raw), raw)
    assert status == 400 and "At most 10" in error["error"]


def test_max_message_size_is_per_app(tabcast):
    app = tabcast.create_app("big", max_message_bytes=20000)
    raw = json.dumps({"name": "e", "channel": "c", "data": "x" * 15000}).encode()
    status, body = http(tabcast, "POST", signed(app, "POST", f"/apps/{app['app_id']}/events", raw), raw)
    assert status == 200 and body == {}


def test_disabled_app_is_403_on_http_and_4003_on_connect(tabcast):
    app = tabcast.create_app("off")
    tabcast.update_app(app["app_id"], enabled=False)
    status, body = http(tabcast, "GET", signed(app, "GET", f"/apps/{app['app_id']}/channels"))
    assert status == 403 and body["error"] == "Application is disabled"


def _basic(app, secret=None):
    token = base64.b64encode(f"{app['key']}:{secret or app['secret']}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_publish_endpoint_with_basic_and_bearer(tabcast, app, pusherjs):
    client = pusherjs(app).connected()
    client.subscribe("simple")
    status, body = http(tabcast, "POST", "/publish", {"channel": "simple", "event": "hi", "data": {"a": 1}},
                        _basic(app))
    assert (status, body) == (200, {"ok": True, "channels": 1})
    assert client.wait_for(type="event", event="hi")["data"] == {"a": 1}
    status, _ = http(tabcast, "POST", "/publish", {"channels": ["simple"], "event": "bye", "data": "text"},
                     {"Authorization": f"Bearer {app['key']}:{app['secret']}"})
    assert status == 200
    assert client.wait_for(type="event", event="bye")["data"] == "text"


def test_publish_endpoint_refuses_bad_credentials_and_shares_limits(tabcast, app):
    assert http(tabcast, "POST", "/publish", {"channel": "c", "event": "e", "data": 1})[0] == 401
    status, body = http(tabcast, "POST", "/publish", {"channel": "c", "event": "e", "data": 1},
                        _basic(app, secret="wrong"))
    assert status == 401 and body == {"error": "Invalid key or secret", "code": 401}
    status, body = http(tabcast, "POST", "/publish", {"channel": "c", "event": "e", "data": "x" * 20000},
                        _basic(app))
    assert status == 413 and "limit" in body["error"]


def test_rotated_secret_keeps_working_during_grace(tabcast):
    app = tabcast.create_app("rotating")
    old_secret = app["secret"]
    rotated = tabcast.update_app(app["app_id"], rotate_secret=True)
    assert rotated["secret"] != old_secret
    for secret in (old_secret, rotated["secret"]):
        status, _ = http(tabcast, "GET", signed(app, "GET", f"/apps/{app['app_id']}/channels", secret=secret))
        assert status == 200


def test_openapi_schema_documents_the_api(tabcast):
    with urllib.request.urlopen(tabcast.http + "/api/schema?format=json", timeout=10) as response:
        schema = json.loads(response.read())
    for path in ["/apps/{app_id}/events", "/apps/{app_id}/batch_events", "/apps/{app_id}/channels",
                 "/apps/{app_id}/channels/{channel_name}/users", "/publish"]:
        assert path in schema["paths"], path


async def test_disabled_app_refuses_websockets_with_4003(tabcast):
    app = tabcast.create_app("off-ws")
    tabcast.update_app(app["app_id"], enabled=False)
    client = await RawClient.connect(tabcast, app["key"])
    assert (await client.recv())["data"]["code"] == 4003
    assert (await client.closed())[0] == 4003
