"""Logs an operator can use (issue 12): JSON lines with who they are about, no secrets, and a
flood of the same event written as a flood (one line when it starts, summaries, one when it
ends) rather than a line per bad frame, refused connect or 4xx.

The flood tests drive real server processes; the redaction and the flood reporter are also
tested directly (service/logs.py, service/realtime/floods.py).
"""

import asyncio
import base64
import hashlib
import hmac
import http.client
import io
import json
import logging
import re
import time

import pytest
import websockets

from service import logs
from service.realtime import floods, signatures
from tests.support.clients import python_backend
from tests.support.processes import TabcastProcess, wait_until
from tests.support.raw import RawClient

FIELDS = ("timestamp", "level", "logger", "event")


def json_lines(server: TabcastProcess, since: int = 0) -> list[dict]:
    """Every line the server wrote (from byte ``since``), each parsed as JSON: fails on any other line."""
    with open(server.log_path, "rb") as log:
        log.seek(since)
        text = log.read().decode()
    parsed = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line in the server log: {line!r}")
        assert isinstance(record, dict) and all(record.get(field) for field in FIELDS), line
        parsed.append(record)
    return parsed


def log_size(server: TabcastProcess) -> int:
    return server.log_path.stat().st_size


def flood_lines(lines: list[dict], name: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {"start": [], "summary": [], "end": []}
    for line in lines:
        if line.get("flood") == name:
            found[line["flood_state"]].append(line)
    return found


@pytest.fixture(scope="module")
def json_server():
    server = TabcastProcess(extra_env={"TABCAST_LOG_FORMAT": "json"}).start()
    yield server
    server.stop()


# --- the reporter and the redaction, directly ---


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_one_line_at_the_start_a_summary_every_30_s_and_one_line_at_the_end(caplog):
    clock = Clock()
    flood = floods.Flood("test_flood", "test events", "tests.flood", threshold=20, window=10, clock=clock)
    caplog.set_level(logging.INFO, logger="tests.flood")
    # A trickle is logged by the caller, one line each.
    assert all(flood.hit("app 1") for _ in range(19))
    clock.now += 11  # a new window
    assert all(flood.hit("app 1") for _ in range(19))
    assert not caplog.records and not flood.flooding
    clock.now += 11
    # Then 65 s of 100 events a second from two apps.
    answers = []
    for second in range(65):
        for i in range(100):
            answers.append(flood.hit("app 2" if i % 4 else "app 3", "4009 Unknown event: nope"))
        clock.now += 1
        flood.check()
    assert answers[:19] == [True] * 19 and not any(answers[19:])  # the caller logs the first 19 itself
    clock.now += 8.5
    flood.check()
    assert flood.flooding  # quiet for 9.5 s: less than 10
    clock.now += 1
    flood.check()
    assert not flood.flooding
    lines = [(record.flood_state, record.getMessage()) for record in caplog.records]
    assert [state for state, _ in lines] == ["start", "summary", "summary", "end"], lines
    assert lines[0][1] == ("test events: flood started, 20 in 0.0 s [app 2] (e.g. 4009 Unknown event: nope); "
                           "a summary every 30 s instead of a line each")
    assert lines[1][1] == ("test events: flood goes on after 30 s, 2980 in the last 30 s "
                           "(most from app 2: 2250, app 3: 750)")  # 20 were in the first line
    assert lines[2][1] == ("test events: flood goes on after 60 s, 3000 in the last 30 s "
                           "(most from app 2: 4500, app 3: 1500)")
    assert lines[3][1] == "test events: flood over after 64.0 s, 6500 in all (most from app 2: 4875, app 3: 1625)"
    assert all(record.levelname == "WARNING" for record in caplog.records)
    # Over: the next event is logged by the caller again.
    assert flood.hit("app 1")


def test_a_flood_counts_at_most_max_keys_keys_apart(caplog):
    clock = Clock()
    flood = floods.Flood("keys", "refusals", "tests.flood", threshold=1, window=10, clock=clock)
    caplog.set_level(logging.INFO, logger="tests.flood")
    for address in range(floods.MAX_KEYS + 500):
        flood.hit(f"10.0.{address // 256}.{address % 256}")
    clock.now += 11
    flood.check()
    end = caplog.records[-1].getMessage()
    assert f"{floods.MAX_KEYS + 500} in all" in end and "other: 500" in end, end


SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SIGNATURE = hmac.new(SECRET.encode(), b"1234.5678:private-x", hashlib.sha256).hexdigest()
RESET_TOKEN = "cf3x1a-0123456789abcdef0123456789abcdef"
BASIC = base64.b64encode(f"key:{SECRET}".encode()).decode()


class FakeRequest:
    method = "GET"
    path = "/apps/1/channels"

    def __repr__(self):
        return f"<ASGIRequest: GET '/apps/1/channels?auth_key=k&auth_signature={SIGNATURE}'>"


@pytest.mark.parametrize("format_name", ["plain", "json"])
def test_secrets_are_redacted_from_messages_extras_and_tracebacks(format_name):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.addFilter(logs.RedactFilter())
    handler.setFormatter(logs.JsonFormatter() if format_name == "json"
                         else logs.PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(f"tests.redact.{format_name}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("Unauthorized: %s", "/apps/1/channels", extra={"status_code": 401, "request": FakeRequest()})
        logger.warning("publish with auth_key=k&auth_timestamp=1&auth_signature=%s", SIGNATURE)
        logger.warning('< TEXT \'{"event":"pusher:subscribe","data":{"auth":"key:%s"}}\'', SIGNATURE)
        logger.warning("Authorization: Basic %s / Bearer %s", BASIC, "metrics-token-123")
        logger.warning("GET /password-reset/MQ/%s/ from %s", RESET_TOKEN, "redis://:hunter2pass@redis:6379/0")
        logger.warning("app secret is %s, stripe sk_live_%s", SECRET, "a1b2c3d4e5f6g7h8")
        logger.warning("settings", extra={"app_secret": "plain-words-secret", "password": "hunter2pass"})
        try:
            raise ValueError(f"bad secret={SECRET}")
        except ValueError:
            logger.exception("failed with token=%s", "tok-abcdef")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    for secret in (SECRET, SIGNATURE, RESET_TOKEN, BASIC, "metrics-token-123", "hunter2pass", "a1b2c3d4e5f6g7h8",
                   "plain-words-secret", "tok-abcdef"):
        assert secret not in output, (secret, output)
    assert output.count(logs.REDACTED) >= 10, output
    # What is not secret stays: the path of a 401, the app key, the timestamp, the traceback.
    assert "Unauthorized: /apps/1/channels" in output and "auth_key=k" in output and "auth_timestamp=1" in output
    assert "ValueError" in output
    if format_name == "json":
        records = [json.loads(line) for line in output.splitlines()]
        assert records[0]["request"] == "GET /apps/1/channels" and records[0]["status_code"] == 401
        assert all(list(record)[:4] == list(FIELDS) for record in records)


# --- a real server, JSON logs ---


async def test_json_lines_carry_the_socket_and_the_request_they_are_about(json_server):
    app = json_server.create_app("json")
    since = log_size(json_server)
    # A request id given by the client is echoed and labels the request's log lines; the app id
    # comes from the path. (A bad signature: Django logs "Unauthorized" for it.)
    connection = http.client.HTTPConnection("127.0.0.1", json_server.port, timeout=10)
    connection.request("GET", f"/apps/{app['app_id']}/channels?auth_key={app['key']}&auth_timestamp=1"
                       f"&auth_version=1.0&auth_signature={'0' * 64}", headers={"X-Request-Id": "req-test-42"})
    response = connection.getresponse()
    response.read()
    assert response.status == 401 and response.getheader("X-Request-Id") == "req-test-42"
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    assert re.fullmatch(r"[0-9a-f]{16}", response.getheader("X-Request-Id"))  # made up when not given
    basic = base64.b64encode(f"{app['key']}:{app['secret']}".encode()).decode()
    connection.request("POST", "/publish", body=b'{"channel":"c","event":"e","data":"1"}',  # the fast path
                       headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json",
                                "X-Request-Id": "fast-1"})
    response = connection.getresponse()
    response.read()
    assert response.status == 200 and response.getheader("X-Request-Id") == "fast-1"
    connection.request("GET", "/healthz", headers={"X-Request-Id": "bad id\twith junk"})
    response = connection.getresponse()
    response.read()
    assert re.fullmatch(r"[0-9a-f]{16}", response.getheader("X-Request-Id"))  # not echoed: not a sane id

    line = wait_until(lambda: next((record for record in json_lines(json_server, since)
                                    if record.get("request_id") == "req-test-42"), None), 10, what="the 401 line")
    assert line["logger"] == "django.request" and line["level"] == "WARNING"
    assert line["event"] == f"Unauthorized: /apps/{app['app_id']}/channels"
    assert line["app_id"] == app["app_id"] and line["status_code"] == 401
    assert "0" * 64 not in json.dumps(json_lines(json_server, since))


async def test_2000_bad_frames_write_a_bounded_number_of_lines_naming_the_socket(json_server):
    app = json_server.create_app("bad-frames")
    client = await RawClient.established(json_server, app["key"])
    since = log_size(json_server)
    for n in range(2000):
        await client.send({"event": f"nope-{n}", "data": {}})
    errors = 0
    while errors < 2000:
        frame = await client.recv()
        errors += frame["event"] == "pusher:error"
    await client.ping_pong()  # the socket still serves
    ended = wait_until(lambda: flood_lines(json_lines(json_server, since), "bad_frames")["end"], 20,
                       what="the end of the flood")
    lines = json_lines(json_server, since)
    flood = flood_lines(lines, "bad_frames")
    assert len(flood["start"]) == 1 and len(ended) == 1
    start = flood["start"][0]
    # Logged from the socket's own task: the context names it.
    assert start["socket_id"] == client.socket_id and start["app_id"] == app["app_id"]
    assert "frames answered with pusher:error: flood started" in start["event"]
    assert f"2000 in all (most from app {app['app_id']}: 2000)" in ended[0]["event"]
    assert len(lines) <= 6, "\n".join(line["event"] for line in lines)
    await client.close()


async def test_2000_refused_connects_write_a_bounded_number_of_lines(json_server):
    since = log_size(json_server)
    gate = asyncio.Semaphore(25)

    async def refused() -> int:
        async with gate:
            async with websockets.connect(f"{json_server.ws}/app/no-such-key?protocol=7") as ws:
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                    await asyncio.wait_for(ws.recv(), 10)
                except websockets.ConnectionClosed as closed:
                    return closed.rcvd.code
            return 0

    codes = await asyncio.gather(*(refused() for _ in range(2000)))
    assert set(codes) <= {4001, 4100} and len(codes) == 2000, set(codes)
    ended = wait_until(lambda: flood_lines(json_lines(json_server, since), "refused_connects")["end"], 20,
                       what="the end of the flood")
    lines = json_lines(json_server, since)
    flood = flood_lines(lines, "refused_connects")
    assert len(flood["start"]) == 1 and len(ended) == 1
    assert "WebSocket connects refused: flood over" in ended[0]["event"] and "2000 in all" in ended[0]["event"]
    assert len(lines) <= 6, "\n".join(line["event"] for line in lines)


def test_a_flood_of_4xx_writes_a_bounded_number_of_lines(json_server):
    app = json_server.create_app("scanner")
    since = log_size(json_server)
    connection = http.client.HTTPConnection("127.0.0.1", json_server.port, timeout=10)
    for _ in range(500):
        connection.request("GET", f"/apps/{app['app_id']}/channels?auth_key={app['key']}&auth_timestamp=1"
                           f"&auth_version=1.0&auth_signature=bad")
        response = connection.getresponse()
        response.read()
        assert response.status == 401
    ended = wait_until(lambda: flood_lines(json_lines(json_server, since), "log:django.request")["end"], 20,
                       what="the end of the flood")
    lines = json_lines(json_server, since)
    unauthorized = [line for line in lines if line["event"].startswith("Unauthorized:")]
    # One each until it is a flood (20 in 10 s; a 401 of an earlier test may be in the same 10 s).
    assert 15 <= len(unauthorized) <= 19, len(unauthorized)
    total = int(re.search(r"(\d+) in all", ended[0]["event"]).group(1))
    assert 500 <= total <= 505, ended[0]["event"]
    assert len(lines) <= 25, len(lines)


def test_a_flood_of_malformed_requests_writes_a_bounded_number_of_json_lines(json_server):
    """uvicorn logs "Invalid HTTP request received." per request: through settings.LOGGING (JSON,
    floods), not uvicorn's own handler."""
    import socket

    since = log_size(json_server)
    for _ in range(300):
        with socket.create_connection(("127.0.0.1", json_server.port), timeout=10) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 400")
    ended = wait_until(lambda: flood_lines(json_lines(json_server, since), "log:uvicorn.error")["end"], 20,
                       what="the end of the flood")
    lines = json_lines(json_server, since)
    invalid = [line for line in lines if line["event"] == "Invalid HTTP request received."]
    assert 15 <= len(invalid) <= 19 and all(line["logger"] == "uvicorn.error" for line in invalid), len(invalid)
    total = int(re.search(r"(\d+) in all", ended[0]["event"]).group(1))
    assert 300 <= total <= 305, ended[0]["event"]
    assert len(lines) <= 25, len(lines)


def test_a_slowloris_wave_aborted_at_the_handshake_deadline_is_one_flood():
    import socket

    server = TabcastProcess(extra_env={"TABCAST_LOG_FORMAT": "json", "TABCAST_HANDSHAKE_TIMEOUT": "1"}).start()
    try:
        since = log_size(server)
        sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(80)]
        for sock in sockets:
            sock.sendall(b"GET /app/key?protocol=7 HTTP/1.1\r\nHost: x\r\n")  # and never the end of it
        for sock in sockets:
            try:
                assert sock.recv(1024) == b"", "closed at the deadline, with no answer"
            except ConnectionResetError:  # aborted: what the deadline does
                pass
            sock.close()
        ended = wait_until(lambda: flood_lines(json_lines(server, since), "handshake_timeouts")["end"], 20,
                           what="the end of the flood")
        lines = json_lines(server, since)
    finally:
        server.stop()
    flood = flood_lines(lines, "handshake_timeouts")
    assert len(flood["start"]) == 1 and "80 in all (most from 127.0.0.1: 80)" in ended[0]["event"], ended
    assert len(lines) == 2, lines
    assert "socket_id" not in flood["start"][0] and "request_id" not in flood["start"][0]


# --- no secret in the logs of a scripted workload ---


@pytest.fixture(scope="module")
def smtp():
    from tests.tenants.test_account_security import SmtpServer

    server = SmtpServer()
    yield server
    server.stop()


METRICS_TOKEN = "metrics-" + "t0ken" * 6


@pytest.mark.parametrize("log_format", ["json", "plain"])
async def test_no_secret_reaches_the_log_of_a_scripted_workload(smtp, log_format):
    from tests.tenants.test_account_security import RESET_LINK, Browser, sign_up

    server = TabcastProcess(extra_env={
        "TABCAST_LOG_FORMAT": log_format, "TABCAST_LOG_LEVEL": "DEBUG", "TABCAST_DEBUG": "0",
        "TABCAST_EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}?tls=0", "TABCAST_METRICS_TOKEN": METRICS_TOKEN,
    }).start()
    try:
        app = server.create_app("secrets", client_events=True)
        secret, key = app["secret"], app["key"]
        secrets = {secret, METRICS_TOKEN}

        # Signed publishes (fast path) and a signed query (Django), then ones with bad signatures.
        backend = python_backend(app)
        backend.trigger("news", "hello", {"n": 1})
        backend.channels_info()
        wrong = python_backend({**app, "secret": "f" * 32})
        for call in (lambda: wrong.trigger("news", "x", {}), wrong.channels_info):
            with pytest.raises(Exception):  # noqa: B017 - the library's AuthenticationError
                call()
        # Basic auth and the metrics token.
        basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
        secrets.add(basic)
        for path, auth, body in (("/publish", f"Basic {basic}", b'{"channel":"news","event":"e","data":"1"}'),
                                 ("/metrics", f"Bearer {METRICS_TOKEN}", None)):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("POST" if body else "GET", path, body=body,
                               headers={"Authorization": auth, "Content-Type": "application/json"})
            assert connection.getresponse().status == 200

        # Private and presence channel auth, a wrong one, a signin, client events.
        client = await RawClient.established(server, key)
        to_sign = f"{client.socket_id}:private-room"
        private_auth = f"{key}:{signatures.sign(secret, to_sign)}"
        assert (await client.subscribe("private-room", auth=private_auth))["event"].endswith("succeeded")
        channel_data = json.dumps({"user_id": "u1"})
        presence_auth = f"{key}:{signatures.sign(secret, f'{client.socket_id}:presence-room:{channel_data}')}"
        assert (await client.subscribe("presence-room", auth=presence_auth,
                                       channel_data=channel_data))["event"].endswith("succeeded")
        bad = await client.subscribe("private-other", auth=f"{key}:{'ab' * 32}")
        assert bad["event"] == "pusher:subscription_error"
        user_data = json.dumps({"id": "u1"})
        signin_auth = f"{key}:{signatures.sign(secret, f'{client.socket_id}::user::{user_data}')}"
        await client.send({"event": "pusher:signin", "data": {"auth": signin_auth, "user_data": user_data}})
        assert (await client.recv_event("pusher:signin_success"))["event"] == "pusher:signin_success"
        await client.send({"event": "client-typing", "channel": "private-room", "data": {"x": 1}})
        await client.ping_pong()
        await client.close()
        secrets |= {private_auth.split(":")[1], presence_auth.split(":")[1], signin_auth.split(":")[1]}

        # A password reset, all the way.
        email = sign_up(server)
        browser = Browser(server.http)
        assert browser.post("/password-reset/", {"email": email}).status_code == 302
        message = wait_until(lambda: next((m for m in smtp.messages if email in m), None), 10, what="the email")
        uid, token = RESET_LINK.search(message).groups()
        secrets.add(token)
        opened = browser.get(f"/password-reset/{uid}/{token}/")
        assert opened.status_code == 302
        new_password = "another horse battery staple"
        secrets.add(new_password)
        done = browser.post(opened.headers["Location"], {"new_password1": new_password,
                                                         "new_password2": new_password})
        assert done.status_code == 302
        secrets.add(browser.session.cookies["sessionid"])
        time.sleep(0.5)  # let the last lines reach the file
    finally:
        server.stop()

    log = server.log_path.read_text()
    print(f"{log_format}: {len(log.splitlines())} lines, {log.count(logs.REDACTED)} redactions")
    assert "DEBUG" in log, "the server logged at its most verbose level"
    if log_format == "json":
        json_lines(server)  # every line is a JSON object with the fields
    leaked = [secret for secret in secrets if secret in log]
    assert not leaked, f"in the log: {leaked}"
    assert not re.search(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", log), "an HMAC signature is in the log"
    assert not RESET_LINK.search(log)


# --- a wave of slow-reader closes ---


async def test_a_wave_of_100_slow_reader_closes_is_summarized():
    """Plain format: the first closes get their line each, then the wave is one flood."""
    from tests.realtime.test_slow_readers import StalledSocket, channel_count, publish, publisher

    server = TabcastProcess(extra_env={"TABCAST_MAX_PENDING_BYTES": str(64 * 1024),
                                       "TABCAST_SLOW_CLOSE_DEADLINE": "2"}).start()
    stalled = []
    try:
        app = server.create_app("wave")
        for _ in range(100):
            sock = StalledSocket(server, app["key"])
            sock.send({"event": "pusher:subscribe", "data": {"channel": "feed"}})
            stalled.append(sock)
        wait_until(lambda: channel_count(server, app, "feed") == 100, 10, what="100 subscriptions")
        since = log_size(server)
        blob = "x" * 10_000
        async with publisher(server, app) as client:
            published = 0
            while channel_count(server, app, "feed") > 0:
                for _ in range(10):
                    await publish(client, ["feed"], json.dumps({"n": published, "blob": blob}))
                    published += 1
                assert published < 3_000, "the slow readers were never closed"

        def ended():
            with open(server.log_path) as log:
                log.seek(since)
                return [line for line in log.read().splitlines() if "flood over" in line]

        wait_until(ended, 20, what="the end of the wave")
        with open(server.log_path) as log:
            log.seek(since)
            lines = log.read().splitlines()
    finally:
        for sock in stalled:
            sock.close()
        server.stop()
    each = [line for line in lines if "closing slow socket" in line]
    flood = [line for line in lines if "slow-reader closes (4100)" in line]
    assert len(each) == 19, "\n".join(lines)  # one line each until 20 in 10 s make it a wave
    assert len(flood) == 2 and "flood started" in flood[0], "\n".join(lines)
    assert "100 in all" in flood[1] and f"most from app {app['app_id']}: 100" in flood[1], flood[1]
    assert len(lines) <= 25, "\n".join(lines)
