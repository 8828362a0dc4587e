"""Fuzz: WebSocket handshakes with random paths, query strings and headers.

The documented answers: a path that is not ``[prefix/]app/<key>`` gets HTTP 404 (quietly); on
the Pusher path the upgrade is accepted, then ``protocol`` other than 5-7 closes with 4007, an
unknown key with 4001 (pusher:error first, then the close), else ``connection_established``
and the socket serves (a ``pusher:ping`` is answered). A malformed HTTP request gets a 4xx.
"""

import json
import re
import time
from urllib.parse import quote, unquote

import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st

from .conftest import budget
from .wire import OP_CLOSE, OP_TEXT, Closed, HandshakeRefused, WireSocket, close_payload

ROUTE = re.compile(r"/*(?:[^?]*/)?app/([A-Za-z0-9_\-]{1,100})/?")
KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

PROTOCOLS = st.sampled_from(["7", "7", "5", "6", "4", "8", "", "07", "7.0", "-7", " 7", "7 ", "+7", "0x7", "1e1",
                             "99999999999999999999999", "\u0667", "\u00b2", "\u2167", "\uff17", "7\n", "\x00"])


@st.composite
def paths(draw, key: str):
    shape = draw(st.integers(0, 9))
    if shape <= 3:
        return "/app/" + key + draw(st.sampled_from(["", "", "/", "//", "%0A", "%00", "/x", ".json", "%2F"]))
    if shape == 4:
        prefix = draw(st.sampled_from(["/x", "/a/b", "/", "//", "/app", "/%0A", "/\u00e9", "/ws/v1"]))
        return quote(prefix, safe="/%") + "/app/" + key
    if shape == 5:
        return "/app/" + draw(st.text(KEY_CHARS, min_size=1, max_size=101))
    if shape == 6:
        return "/app/" + quote(draw(st.text(max_size=20)), safe="")
    if shape == 7:
        return draw(st.sampled_from(["/", "/healthz", "/apps/1/events", "/publish", "/demo/", "/admin/", "/api/schema",
                                     "/dashboard/", "/app", "/app/", "/sdk/v1/tabcast.js", "/metrics"]))
    return "/" + quote(draw(st.text(max_size=30)), safe="/")


@st.composite
def queries(draw):
    params = []
    if draw(st.integers(0, 4)):
        params.append(("protocol", draw(PROTOCOLS)))
    if draw(st.booleans()):
        params += [("client", "js"), ("version", draw(st.sampled_from(["8.4.0", "", "x" * 300])))]
    params += draw(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=3))
    if draw(st.integers(0, 5)) == 0:
        params.append(("protocol", draw(PROTOCOLS)))  # a second one: the first counts
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    if draw(st.integers(0, 9)) == 0:
        query = quote(draw(st.text(max_size=30)), safe="=&%")
    return "?" + query if query or draw(st.booleans()) else ""


header_names = st.text("abcdefghijklmnopqrstuvwxyz-ABCXYZ0123456789", min_size=1, max_size=12)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                        max_size=40).map(str.strip)


@st.composite
def header_sets(draw):
    headers = {}
    if draw(st.booleans()):
        headers["Origin"] = draw(st.one_of(st.sampled_from(["http://example.com", "null", "https://[::1]:8", "file://",
                                                            "http://\u00e9.com", ""]), header_values))
    if draw(st.integers(0, 3)) == 0:
        headers["X-Forwarded-For"] = draw(st.one_of(st.sampled_from(["1.2.3.4", "junk", "::1, 1.1.1.1", "999.1.1.1",
                                                                     "1.2.3.4, " * 50]), header_values))
    if draw(st.integers(0, 3)) == 0:
        headers["Forwarded"] = draw(st.one_of(st.just('for="[::1]";proto=https'), header_values))
    if draw(st.integers(0, 4)) == 0:
        headers["Sec-WebSocket-Extensions"] = draw(st.sampled_from(["permessage-deflate", "x-junk; a=1",
                                                                   "permessage-deflate; client_max_window_bits=99"]))
    if draw(st.integers(0, 4)) == 0:
        headers["Sec-WebSocket-Protocol"] = draw(st.one_of(st.sampled_from(["chat", "chat, superchat", "x-y.z"]),
                                                           header_values))
    for name, value in draw(st.lists(st.tuples(header_names, header_values), max_size=3)):
        if name.lower() not in ("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
                                "content-length", "transfer-encoding"):
            headers["X-" + name] = value
    return headers


TOKEN_LIST = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*,\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*")


def expected(path_and_query: str, key: str, headers: dict) -> tuple:
    """(kind, acceptable): ("http", statuses) or ("pusher", close codes; None = connected and serving)."""
    raw_path, _, query = path_and_query.partition("?")
    path = unquote(raw_path, errors="replace")
    if "Sec-WebSocket-Protocol" in headers and not TOKEN_LIST.fullmatch(headers["Sec-WebSocket-Protocol"]):
        return ("either", {400})  # RFC 6455 4.2.1: a malformed handshake is answered 400
    match = ROUTE.fullmatch(path)
    if match is None:
        return ("http", {404})
    accepted = set()
    # As parse_qs reads it: "+" is a space, fields without a value are left out, the first counts.
    values = [unquote(v.replace("+", " "), errors="replace") for k, _, v in (p.partition("=") for p in query.split("&"))
              if unquote(k.replace("+", " "), errors="replace") == "protocol" and v]
    version = values[0] if values else None
    if version is not None and not (version.isascii() and version.isdigit() and int(version) in (5, 6, 7)):
        if version.isdigit() and not version.isascii():
            accepted.add("ambiguous")  # other scripts' digits: a server may read them as numbers or not
        accepted.add(4007)
        if match.group(1) != key:
            accepted.add(4001)  # both wrong: either refusal is right
    elif match.group(1) != key:
        accepted.add(4001)
    if not accepted or "ambiguous" in accepted:
        accepted.add(None if match.group(1) == key else 4001)
    accepted.discard("ambiguous")
    return ("pusher", accepted)


def handshake(server, target: str, headers: dict) -> tuple:
    """("http", status) or ("pusher", close code or None if connected and serving)."""
    try:
        sock = WireSocket.connect(server.port, target, headers=headers, timeout=10)
    except HandshakeRefused as refused:
        return ("http", refused.code, refused.body[:300])
    try:
        opcode, payload, _ = sock.recv_frame(timeout=10)
        assert opcode == OP_TEXT, (opcode, payload)
        first = json.loads(payload)
        if first["event"] == "pusher:connection_established":
            sock.send(OP_TEXT, b'{"event":"pusher:ping","data":{}}')
            opcode, payload, _ = sock.recv_frame(timeout=10)
            assert json.loads(payload)["event"] == "pusher:pong", payload
            return ("pusher", None, first)
        assert first["event"] == "pusher:error", first
        opcode, payload, _ = sock.recv_frame(timeout=10)
        assert opcode == OP_CLOSE, (opcode, payload)
        code, _ = close_payload(payload)
        error = json.loads(first["data"]) if isinstance(first["data"], str) else first["data"]
        assert error["code"] == code, (first, code)  # the error says why, the close code agrees
        rest = sock.answer_close(payload)
        assert not rest, f"the server sent {rest[:200]!r} after its close frame"
        return ("pusher", code, first)
    finally:
        sock.close()


@budget(200)
@given(path=paths("KEY"), query=queries(), headers=header_sets())
@example(path="/app/KEY", query="?protocol=%C2%B2", headers={})  # a digit to str.isdigit, not to int()
@example(path="/app/KEY", query="?protocol=%D9%A7", headers={})
@example(path="/app/KEY%0A", query="?protocol=7", headers={})  # a trailing newline after the key
@example(path="/nowhere", query="", headers={})
def test_handshakes_get_their_documented_answers(fuzz_server, liveness, path, query, headers):
    liveness.begin()
    key = fuzz_server.app["key"]
    target = path.replace("KEY", key) + query
    note(f"GET {target!r} headers={headers!r}")
    kind, acceptable = expected(target, key, headers)
    try:
        got = handshake(fuzz_server, target, headers)
    except (Closed, TimeoutError) as exc:
        raise AssertionError(f"GET {target!r}: no answer ({exc!r}); expected {kind} {acceptable}") from None
    if kind == "either":  # a malformed header: refused with 400, or tolerated
        kind, acceptable = ("http", acceptable) if got[0] == "http" else expected(target, key, {})
    assert got[0] == kind and got[1] in acceptable, f"GET {target!r}: got {got}; expected {kind} {acceptable}"
    liveness.check()


@pytest.mark.parametrize("size", [4_000, 16_000, 100_000, 1_000_000])
def test_oversized_handshake_headers_are_refused_promptly(fuzz_server, liveness, size):
    """A header too large to take is answered with a 4xx (431 or 400) at once; one the server can
    take connects. Either way nothing waits for the handshake deadline, and nothing is logged."""
    key = fuzz_server.app["key"]
    started = time.monotonic()
    try:
        got = handshake(fuzz_server, f"/app/{key}?protocol=7", {"X-Big": "b" * size})
    except (Closed, TimeoutError) as exc:
        got = ("no answer", repr(exc))
    elapsed = time.monotonic() - started
    assert got[:2] == ("pusher", None) or (got[0] == "http" and 400 <= got[1] < 500), (size, got, elapsed)
    assert elapsed < 2, f"a {size}-byte header took {elapsed:.1f}s to be answered: {got}"
    liveness.check()


@pytest.mark.parametrize("request_bytes", [
    b"GET /app/KEY HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # no Upgrade: a plain GET
    b"GET /app/KEY HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",  # no key
    b"GET /app/KEY HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",  # old version
    b"GET /app/KEY HTTP/1.1\r\nHost: evil.example\r\n\r\n",  # a Host not in ALLOWED_HOSTS
    b"GET /app/KEY\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # control byte in the target
    b"POST /app/KEY HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 2\r\n\r\n{}",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS ClientHello on the plain port
    b"GET /app/KEY HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    b"GET /app/KEY HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_malformed_upgrade_requests_get_4xx_quietly(fuzz_server, liveness, request_bytes):
    liveness.begin()
    request_bytes = request_bytes.replace(b"KEY", fuzz_server.app["key"].encode())
    try:
        WireSocket.connect(fuzz_server.port, "/", request=request_bytes, timeout=5).close()
        got = ("101",)
    except HandshakeRefused as refused:
        got = ("http", refused.code)
    except Closed as closed:
        got = ("closed without an answer", str(closed))
    except TimeoutError:
        got = ("no answer within 5 s",)
    assert got[0] == "http" and 400 <= got[1] < 500, f"{request_bytes[:80]!r}: {got}"
    liveness.check()
