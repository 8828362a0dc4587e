"""Issue 9, findings 2, 7 and the listing part of 5: strangers' input against real servers.

Every test drives ``manage.py serve`` (tests/support/processes.py) the way the reviewer did,
checks the documented answer (``{"error": ..., "code": <status>}`` for HTTP, pusher:error
4001 for an unknown key, a 404 handshake refusal for an unknown WebSocket path), and then
that the process still serves a good publish to a subscriber.

The publish endpoints are served two ways (service/api/fast.py on the event loop, or Django
REST framework with TABCAST_FAST_PUBLISH=0); the ``servers`` fixture starts one of each, and
the body and signature tests assert that both answer byte-for-byte the same.
"""

import asyncio
import base64
import http.client
import json
import re
import time

import pytest
import websockets

from service.realtime import signatures
from tests.conftest import fresh_app
from tests.support.clients import python_backend
from tests.support.processes import TabcastProcess
from tests.support.raw import RawClient

MODES = ("fast", "drf")
UNKNOWN_ID = 10**12  # no test database gets this far


@pytest.fixture(scope="module")
def servers():
    """A fast-path and a DRF server, caching app lookups for 60 s as a production server does."""
    started = {}
    try:
        for mode in MODES:
            started[mode] = TabcastProcess(extra_env={
                "TABCAST_FAST_PUBLISH": "1" if mode == "fast" else "0",
                "TABCAST_APP_CACHE_SECONDS": "60",
            }).start()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def apps(servers):
    return {mode: fresh_app(server) for mode, server in servers.items()}


# --- helpers ----------------------------------------------------------------------------------

def request(server, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """(status, headers, parsed JSON body or raw bytes) with exactly the headers given."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body if method != "GET" else None, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed
    finally:
        connection.close()


def sign(app: dict, method: str, path: str, body: bytes = b"", *, key=None, secret=None, timestamp=None,
         version="1.0", signature=None, params=None) -> str:
    """A path with its query, signed as the pusher libraries do, with knobs to break it."""
    query = {"auth_key": key or app["key"], "auth_timestamp": str(timestamp or int(time.time())),
             "auth_version": version, **(params or {})}
    if body:
        query["body_md5"] = signatures.body_md5(body)
    to_sign = signatures.request_string_to_sign(method, path, query)
    query["auth_signature"] = signature or signatures.sign(secret or app["secret"], to_sign)
    return path + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def basic(app: dict) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{app['key']}:{app['secret']}".encode()).decode()}


def rss_mb(server) -> float:
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def log_size(server) -> int:
    return server.log_path.stat().st_size


def log_since(server, offset: int) -> str:
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


async def assert_still_serving(server, app, channel="after-abuse"):
    """A subscriber gets a good publish: the process kept serving through the bad input."""
    client = await RawClient.established(server, app["key"])
    try:
        assert (await client.subscribe(channel))["event"] == "pusher_internal:subscription_succeeded"
        body = json.dumps({"channel": channel, "event": "still-here", "data": {"ok": 1}}).encode()
        status, _, answer = await asyncio.to_thread(
            request, server, "POST", "/publish", body, {**basic(app), "Content-Type": "application/json"})
        assert (status, answer) == (200, {"ok": True, "channels": 1})
        frame = await client.recv_event("still-here")
        assert frame["channel"] == channel and json.loads(frame["data"]) == {"ok": 1}
    finally:
        await client.close()


# --- finding 2: junk keys must not grow the server's memory ----------------------------------

JUNK_BYTES = 500_000
JUNK_QUERY_BYTES = 60_000  # the HTTP parser refuses request lines over ~64 KB itself


def junk_key(i: int, size: int = JUNK_BYTES) -> str:
    return f"{i:08d}" + "k" * size


def junk_requests(app, count: int, start: int):
    """The reviewer's attack, over every HTTP way a key reaches a lookup."""
    for i in range(start, start + count):
        kind = i % 4
        if kind == 0:
            yield "POST", "/publish", b"{}", {"Authorization": f"Bearer {junk_key(i)}:secret"}
        elif kind == 1:
            token = base64.b64encode(f"{junk_key(i)}:secret".encode()).decode()
            yield "POST", "/publish", b"{}", {"Authorization": f"Basic {token}"}
        elif kind == 2:  # signed, the app named only by auth_key (pusher-http-python's terminate path)
            path = sign(app, "POST", "/users/someone/terminate_connections", key=junk_key(i, JUNK_QUERY_BYTES))
            yield "POST", path, b"", {}
        else:  # signed, junk auth_key on an /apps/{id}/ path
            path = sign(app, "POST", f"/apps/{app['app_id']}/events", b"{}", key=junk_key(i, JUNK_QUERY_BYTES))
            yield "POST", path, b"{}", {"Content-Type": "application/json"}


@pytest.mark.parametrize("mode", MODES)
async def test_junk_keys_are_refused_without_growing_memory(servers, apps, mode):
    server, app = servers[mode], apps[mode]

    def flood(count, start):
        for method, path, body, headers in junk_requests(app, count, start):
            status, _, answer = request(server, method, path, body, headers)
            assert status == 401 and answer["code"] == 401 and answer["error"], (path[:80], status, answer)

    await asyncio.to_thread(flood, 40, 0)  # warm up: lazy imports, allocator arenas
    before = rss_mb(server)
    await asyncio.to_thread(flood, 400, 1000)  # ~106 MB of junk keys
    grown = rss_mb(server) - before
    # The unbounded cache kept every key: ~+100 MB here (the reviewer saw +480 MB for 1,000).
    assert grown < 40, f"RSS grew {grown:.0f} MB after 400 junk keys of 500 KB"
    await assert_still_serving(server, app)


async def test_junk_websocket_keys_get_4001_and_are_not_kept(servers, apps):
    server, app = servers["fast"], apps["fast"]
    before = rss_mb(server)
    for i in range(30):
        client = await RawClient.connect(server, f"{i:0100d}")
        error = await client.recv_event("pusher:error")
        assert error["data"]["code"] == 4001 and "does not exist" in error["data"]["message"]
        assert (await client.closed())[0] == 4001
    for key in ("k" * 101, "k" * 5_000):  # longer than any key: refused before the consumer
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"{server.ws}/app/{key}?protocol=7")
        assert refused.value.response.status_code == 404
    assert rss_mb(server) - before < 20
    await assert_still_serving(server, app)


# --- finding 7 (a): full matches everywhere -----------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field,value,fragment", [
    ("channel", "room\n", "Channel name may contain only"),
    ("channels", ["room\n"], "Channel name may contain only"),
    ("socket_id", "1.2\n", "socket_id must look like 123.456"),
    ("socket_id", "١.٢", "socket_id must look like 123.456"),  # Arabic-Indic digits match \d
])
async def test_trailing_newlines_and_unicode_digits_are_refused(servers, apps, mode, field, value, fragment):
    server, app = servers[mode], apps[mode]
    payload = {"channel": "fine", "event": "e", "data": "{}", field: value}
    status, _, answer = request(server, "POST", "/publish", json.dumps(payload).encode(),
                                {**basic(app), "Content-Type": "application/json"})
    assert status == 400 and answer["code"] == 400 and fragment in answer["error"], answer
    await assert_still_serving(server, app)


async def test_websocket_subscribe_with_a_trailing_newline_is_an_invalid_channel(servers, apps):
    server, app = servers["fast"], apps["fast"]
    client = await RawClient.established(server, app["key"])
    frame = await client.subscribe("room\n")
    assert frame["event"] == "pusher:subscription_error" and frame["data"]["type"] == "InvalidChannel"
    await client.ping_pong()
    await client.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_publish_path_with_a_trailing_newline_is_not_a_publish_endpoint(servers, apps, mode):
    server, app = servers[mode], apps[mode]
    body = json.dumps({"name": "e", "channel": "c", "data": "{}"}).encode()
    real = f"/apps/{app['app_id']}/events"
    query = sign(app, "POST", real + "\n", body).partition("?")[2]
    status, _, _ = request(server, "POST", f"{real}%0A?{query}", body, {"Content-Type": "application/json"})
    assert status == 404


# --- finding 7 (b): an unknown WebSocket path is a quiet 404 ------------------------------------

@pytest.mark.parametrize("path", ["/", "/ws", "/app/", "/app", "/apps/somekey", "/app/key/extra",
                                  "/app/key%0A", "/app/" + "k" * 101, "/app/bad%20key"])
async def test_unknown_websocket_paths_are_refused_with_404_and_no_traceback(servers, apps, path):
    server = servers["fast"]
    offset = log_size(server)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{server.ws}{path}")
    assert refused.value.response.status_code == 404
    await assert_still_serving(server, apps["fast"])
    logged = log_since(server, offset)
    assert "Traceback" not in logged and "No route found" not in logged and "Exception" not in logged, logged


# --- finding 7 (c): one set of body rules on both publish paths --------------------------------

def _valid(endpoint: str, data) -> dict:
    if endpoint == "publish":
        return {"channel": "bodies", "event": "e", "data": data}
    if endpoint == "events":
        return {"name": "e", "channel": "bodies", "data": data}
    return {"batch": [{"name": "e", "channel": "bodies", "data": data}]}


def _nested(depth: int):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


BODIES = [  # (id, content type, body for an endpoint, expected status)
    ("json", "application/json", lambda e: json.dumps(_valid(e, {"a": 1})).encode(), 200),
    ("json-charset", "application/json; charset=utf-8", lambda e: json.dumps(_valid(e, "x")).encode(), 200),
    ("json-suffix", "application/vnd.api+json", lambda e: json.dumps(_valid(e, "x")).encode(), 200),
    ("no-content-type", None, lambda e: json.dumps(_valid(e, "x")).encode(), 200),
    ("text-plain", "text/plain", lambda e: json.dumps(_valid(e, "x")).encode(), 415),
    ("form", "application/x-www-form-urlencoded", lambda e: b"channel=bodies&event=e&data=x", 415),
    ("multipart", "multipart/form-data; boundary=zz", lambda e: b"--zz\r\n\r\nx\r\n--zz--\r\n", 415),
    ("empty", "application/json", lambda e: b"", 400),
    ("blank", "application/json", lambda e: b"  \r\n ", 400),
    ("invalid-utf8", "application/json", lambda e: b'{"channel": "\xff\xfe", "event": "e"}', 400),
    ("deep-brackets", "application/json", lambda e: b"[" * 100_000, 400),
    ("deep-braces", "application/json", lambda e: b'{"a":' * 50_000, 400),
    ("deep-data", "application/json", lambda e: json.dumps(_valid(e, _nested(300))).encode(), 400),
    ("array", "application/json", lambda e: b"[]", 400),
    ("string", "application/json", lambda e: b'"publish"', 400),
    ("null", "application/json", lambda e: b"null", 400),
    ("number", "application/json", lambda e: b"1", 400),
    ("truncated", "application/json", lambda e: b'{"channel": ', 400),
    ("nan", "application/json", lambda e: b'{"channel": NaN}', 400),
    ("bom", "application/json", lambda e: b"\xef\xbb\xbf" + json.dumps(_valid(e, "x")).encode(), None),
]


def _send_body(server, app, endpoint: str, content_type, body: bytes):
    headers = {"Content-Type": content_type} if content_type else {}
    if endpoint == "publish":
        return request(server, "POST", "/publish", body, {**headers, **basic(app)})
    path = sign(app, "POST", f"/apps/{app['app_id']}/{endpoint}", body)
    return request(server, "POST", path, body, headers)


@pytest.mark.parametrize("endpoint", ["publish", "events", "batch_events"])
@pytest.mark.parametrize("name,content_type,make,expected", BODIES, ids=[b[0] for b in BODIES])
def test_both_publish_paths_answer_every_body_the_same(servers, apps, endpoint, name, content_type, make,
                                                       expected):
    body = make(endpoint)
    answers = {}
    for mode in MODES:
        status, headers, answer = _send_body(servers[mode], apps[mode], endpoint, content_type, body)
        assert headers.get("content-type") == "application/json", (mode, headers)
        answers[mode] = (status, answer)
    assert answers["fast"] == answers["drf"], answers
    status, answer = answers["fast"]
    assert status != 500
    if expected is not None:
        assert status == expected, answer
    else:
        assert status in (200, 400), answer
    if status != 200:
        assert answer["code"] == status and isinstance(answer["error"], str) and answer["error"]


async def test_the_servers_keep_serving_after_the_bad_bodies(servers, apps):
    for mode in MODES:
        await asyncio.to_thread(_send_body, servers[mode], apps[mode], "publish", "application/json", b"[" * 100_000)
        await assert_still_serving(servers[mode], apps[mode], channel="after-bodies")


# --- finding 7 (e): an unknown app id is answered like a bad signature ---------------------------

def _broken(app, method, path, body, how, now):
    if how == "wrong-secret":
        return sign(app, method, path, body, secret="0" * 32, timestamp=now)
    if how == "junk-signature":
        return sign(app, method, path, body, signature="f" * 64, timestamp=now)
    if how == "expired":
        return sign(app, method, path, body, timestamp=now - 3600)
    if how == "bad-version":
        return sign(app, method, path, body, version="2.0", timestamp=now)
    return sign(app, method, path, body, timestamp=now)  # valid for this app, but on another app's id


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["wrong-secret", "junk-signature", "expired", "bad-version", "other-app"])
@pytest.mark.parametrize("method,route", [
    ("POST", "/apps/{id}/events"),
    ("POST", "/apps/{id}/batch_events"),
    ("GET", "/apps/{id}/channels"),
    ("GET", "/apps/{id}/channels/room"),
    ("POST", "/apps/{id}/users/someone/terminate_connections"),
])
def test_unknown_app_ids_are_answered_like_a_bad_signature(servers, apps, mode, how, method, route):
    server, app = servers[mode], apps[mode]
    body = {"/apps/{id}/events": b'{"name":"e","channel":"c","data":"x"}',
            "/apps/{id}/batch_events": b'{"batch":[{"name":"e","channel":"c","data":"x"}]}'}.get(route, b"")
    headers = {"Content-Type": "application/json"} if body else {}
    known_id = app["app_id"] if how != "other-app" else fresh_app(server)["app_id"]
    answers, now = [], int(time.time())  # one timestamp: the message quotes it
    for app_id in (known_id, UNKNOWN_ID, 2**70):
        path = route.replace("{id}", str(app_id))
        status, got_headers, answer = request(server, method, _broken(app, method, path, body, how, now), body,
                                             headers)
        assert isinstance(answer, dict), answer
        # The message may quote the request's own string-to-sign; with the id masked, nothing differs.
        masked = json.dumps(answer).replace(f"/apps/{app_id}/", "/apps/{id}/")
        masked = re.sub(r"server time \(\d+\)", "server time (now)", masked)  # the clock may tick between requests
        answers.append((status, got_headers.get("www-authenticate"), masked))
    assert answers[0][0] == 401, answers
    assert answers[0] == answers[1] == answers[2], answers


@pytest.mark.parametrize("app_id", ["0", "9" * 19, "9" * 25, "9" * 5000])
def test_absurd_app_ids_are_never_a_500_and_both_paths_agree(servers, apps, app_id):
    body, now, answers = b'{"name":"e","channel":"c","data":"x"}', int(time.time()), {}
    for mode in MODES:
        path = f"/apps/{app_id}/events"
        status, _, answer = request(servers[mode], "POST", sign(apps[mode], "POST", path, body, timestamp=now), body,
                                    {"Content-Type": "application/json"})
        masked = json.dumps(answer).replace(apps[mode]["key"], "{key}") if status != 404 else None
        answers[mode] = (status, masked)  # each server has its own app key; Django's 404 is a page
    assert answers["fast"] == answers["drf"], answers
    assert answers["fast"][0] in (401, 404), answers


# --- finding 5 (listing): GET /channels is capped -------------------------------------------------

@pytest.fixture(scope="module")
def listing_server():
    server = TabcastProcess(extra_env={"TABCAST_MAX_CHANNELS_LISTED": "5"}).start()
    yield server
    server.stop()


async def test_channel_listing_is_capped_sorted_and_says_it_was_truncated(listing_server):
    app = fresh_app(listing_server)
    client = await RawClient.established(listing_server, app["key"])
    names = [f"room-{i:02d}" for i in range(12)] + ["presence-x"]
    for name in names[:12]:
        assert (await client.subscribe(name))["event"] == "pusher_internal:subscription_succeeded"
    backend = python_backend(app)
    listed = await asyncio.to_thread(backend.channels_info)
    assert list(listed["channels"]) == sorted(names[:12])[:5]
    assert listed["truncated"] is True and listed["limit"] == 5
    path = sign(app, "GET", f"/apps/{app['app_id']}/channels")
    status, headers, _ = request(listing_server, "GET", path)
    assert status == 200 and headers.get("x-tabcast-truncated") == "true"
    narrow = await asyncio.to_thread(backend.channels_info, "room-0")  # 10 match: cut at 5 too
    assert narrow == {"channels": {f"room-0{i}": {"subscription_count": 1} for i in range(5)},
                      "truncated": True, "limit": 5}
    # Under the cap: Pusher's exact shape, no extra fields.
    few = await asyncio.to_thread(backend.channels_info, "room-1")
    assert few == {"channels": {"room-10": {"subscription_count": 1}, "room-11": {"subscription_count": 1}}}
    await client.close()
    await assert_still_serving(listing_server, app)
