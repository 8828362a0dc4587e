"""Fuzz: the signed Pusher endpoints and /publish with random bodies, content types, headers,
query strings and signatures, on both ways they are served (the event-loop fast path and
Django/DRF with TABCAST_FAST_PUBLISH=0).

Properties: never a 5xx; every status is one the API documents (200, 400, 401, 403, 404, 413, 415,
429: docs/security.md, /api/schema); every refusal is JSON ``{"error": str, "code": status}``;
both paths give the same status for the same request (one set of rules); a validly signed,
well-formed publish is accepted; a request that is not validly signed is refused with 401,
whatever the app id (ids cannot be enumerated); and both processes keep serving a subscriber.
"""

import json

from hypothesis import example, given, note
from hypothesis import strategies as st

from .conftest import budget
from .http import encode_query, request, signed_target
from .strategies import channel_names, deep_json, json_values, valid_names

DOCUMENTED = {200, 400, 401, 403, 404, 413, 415, 429}  # the responses in /api/schema (503: backend down)
PUBLIC_NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_=@,.;", min_size=1, max_size=30) \
    .filter(lambda n: not n.startswith(("private-", "presence-", "#")))

event_names = st.one_of(st.text(min_size=1, max_size=20), st.sampled_from(["pusher:x", "pusher_internal:x", "", " ",
                                                                           "e" * 200, "e" * 201]), json_values)


@st.composite
def event_payloads(draw, single_channel=False, publish=False):
    """(payload, well_formed): an event body, well formed or broken in some field."""
    if draw(st.integers(0, 2)) == 0:  # well formed
        payload = {"event" if publish else "name": draw(st.text("abcdefghij-_:.", min_size=1, max_size=20)
                                                         .filter(lambda n: not n.startswith("pusher"))),
                   "data": draw(st.one_of(st.text(max_size=50), st.dictionaries(st.text(max_size=5),
                                                                                st.integers(-1000, 1000), max_size=3)))}
        if single_channel or draw(st.booleans()):
            payload["channel"] = draw(PUBLIC_NAMES)
        else:
            payload["channels"] = draw(st.lists(PUBLIC_NAMES, min_size=1, max_size=5))
        return payload, True
    payload = draw(st.fixed_dictionaries({}, optional={
        ("event" if publish else "name"): event_names,
        "data": st.one_of(json_values, st.just("x" * 10241), st.just("x" * 10240), st.just({"x": "y" * 20000})),
        "channel": st.one_of(channel_names, json_values),
        "channels": st.one_of(st.lists(channel_names, max_size=4), st.lists(valid_names, min_size=99, max_size=101),
                              json_values),
        "socket_id": st.one_of(st.sampled_from(["1.2", "1.2\n", "a.b", "", "123.456"]), json_values),
        "info": st.one_of(st.sampled_from(["subscription_count", "user_count", "x", "", "user_count,x"]), json_values),
    }))
    return payload, False


@st.composite
def bodies(draw, kind: str):
    """(body bytes, well_formed) for an endpoint kind."""
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(st.binary(max_size=64)), False
    if shape == 1:
        return draw(deep_json).encode(), False
    if shape == 2:
        return json.dumps(draw(json_values)).encode(), False
    if shape == 3:
        return b"", False
    if kind == "batch_events":
        items = draw(st.lists(event_payloads(single_channel=True), max_size=12))
        payload = {"batch": [p for p, _ in items]}
        well_formed = 0 < len(items) <= 10 and all(ok for _, ok in items)
        if draw(st.integers(0, 5)) == 0:
            payload = {"batch": draw(json_values)}
            well_formed = False
    else:
        payload, well_formed = draw(event_payloads(publish=kind == "publish"))
    if shape == 4:
        return encode_query([(str(k), json.dumps(v)) for k, v in payload.items()]).encode(), False  # a form
    return json.dumps(payload).encode(), well_formed


CONTENT_TYPES = st.sampled_from(["application/json"] * 6 + [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz",
    "application/json; charset=utf-8", "application/json; charset=utf-16", "application/vnd.api+json", "*/*",
    "junk", "application/json\x00", ""])
SIGN_MODES = st.sampled_from(["valid"] * 6 + ["bad-signature", "missing-signature", "old-timestamp", "bad-md5",
                                               "wrong-key", "bad-version", "junk-timestamp", "unsigned"])
PUBLISH_AUTH = st.sampled_from(["basic"] * 3 + ["bearer"] * 2 + ["none", "junk", "wrong-secret", "huge-key",
                                                                 "basic-junk", "no-colon"])
query_params = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=3)
extra_headers = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=10).map(lambda n: "X-" + n),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.strip), max_size=3)


@st.composite
def api_requests(draw):
    kind = draw(st.sampled_from(["events"] * 3 + ["batch_events"] * 2 + ["publish"] * 3 + [
        "channels", "channel", "users", "terminate", "terminate_unscoped"]))
    app_id = draw(st.sampled_from(["real"] * 8 + ["other", "zero", "huge"]))
    body, well_formed = draw(bodies(kind)) if kind in ("events", "batch_events", "publish") else (b"", False)
    return {
        "kind": kind, "app_id": app_id, "body": body, "well_formed": well_formed,
        "content_type": draw(CONTENT_TYPES),
        "sign": draw(SIGN_MODES), "publish_auth": draw(PUBLISH_AUTH),
        "params": draw(query_params) if kind not in ("channels", "channel") else draw(
            st.lists(st.tuples(st.sampled_from(["info", "filter_by_prefix", "x"]),
                               st.sampled_from(["user_count", "subscription_count", "cache", "presence-", "", "zz",
                                                "user_count,subscription_count"])), max_size=3)),
        "channel": draw(st.one_of(valid_names, channel_names)),
        "headers": draw(extra_headers),
    }


def materialize(req: dict, server) -> tuple[str, str, bytes, dict]:
    import base64
    from urllib.parse import quote

    app = server.app
    app_id = {"real": app["app_id"], "other": app["app_id"] + 1000, "zero": 0, "huge": 10 ** 25}[req["app_id"]]
    headers = dict(req["headers"])
    if req["content_type"] is not None:
        headers["Content-Type"] = req["content_type"]
    body = req["body"]
    kind = req["kind"]
    if kind == "publish":
        key, secret = app["key"], app["secret"]
        auth = req["publish_auth"]
        if auth == "basic":
            headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
        elif auth == "bearer":
            headers["Authorization"] = f"Bearer {key}:{secret}"
        elif auth == "junk":
            headers["Authorization"] = "Digest x"
        elif auth == "wrong-secret":
            headers["Authorization"] = f"Bearer {key}:nope"
        elif auth == "huge-key":
            headers["Authorization"] = "Bearer " + "k" * 60000 + ":s"
        elif auth == "basic-junk":
            headers["Authorization"] = "Basic !!!notbase64"
        elif auth == "no-colon":
            headers["Authorization"] = f"Bearer {key}"
        target = "/publish" + ("?" + encode_query(req["params"]) if req["params"] else "")
        return "POST", target, body, headers
    channel = quote(req["channel"], safe="")
    method, path = {
        "events": ("POST", f"/apps/{app_id}/events"),
        "batch_events": ("POST", f"/apps/{app_id}/batch_events"),
        "channels": ("GET", f"/apps/{app_id}/channels"),
        "channel": ("GET", f"/apps/{app_id}/channels/{channel}"),
        "users": ("GET", f"/apps/{app_id}/channels/{channel}/users"),
        "terminate": ("POST", f"/apps/{app_id}/users/{channel}/terminate_connections"),
        "terminate_unscoped": ("POST", f"/users/{channel}/terminate_connections"),
    }[kind]
    from urllib.parse import unquote
    target = signed_target(app, method, unquote(path), body, req["params"], req["sign"])
    # The signature covers the decoded path; the request line carries it encoded.
    target = path + target[len(unquote(path)):]
    return method, target, body, headers


def check_answer(answer, req) -> None:
    assert answer.status < 500, f"HTTP {answer.status}: {answer.body[:500]!r}"
    assert answer.status in DOCUMENTED, f"undocumented status {answer.status}: {answer.body[:300]!r}"
    unroutable = req["kind"] in ("channel", "users", "terminate", "terminate_unscoped") and \
        (not req["channel"] or "/" in req["channel"])
    if unroutable and answer.status == 404:
        return  # no API URL has an empty or a slashed segment: the site's own 404 page answers
    if answer.status == 400 and answer.body == b"Invalid HTTP request received.":
        return  # not HTTP (a NUL in a header): the HTTP parser refuses it before any route
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    body = answer.json()
    if answer.status != 200:
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body.get("code") == answer.status, body
    signed_ok = req["kind"] == "publish" and req["publish_auth"] in ("basic", "bearer") or \
        req["kind"] != "publish" and req["sign"] == "valid" and (req["app_id"] == "real" or req["kind"] ==
                                                                  "terminate_unscoped")
    if not signed_ok and answer.status != 413:
        assert answer.status == 401, f"an unauthenticated request was answered {answer.status}: {body}"
    if signed_ok and req["well_formed"] and req["content_type"] in ("application/json", "application/json; charset=utf-8"):
        assert answer.status == 200, f"a valid publish was refused: {answer.status} {body}"


@budget(200)
@given(req=api_requests())
@example(req={"kind": "events", "app_id": "real", "body": b'{"name":"e","channel":"c","data":' + b"[" * 5000 +
              b"]" * 5000 + b"}", "well_formed": False, "content_type": "application/json", "sign": "valid",
              "publish_auth": "basic", "params": [], "channel": "c", "headers": {}})
@example(req={"kind": "publish", "app_id": "real", "body": b'{"event":"e","channel":"c","data":{"n":1e999}}',
              "well_formed": False, "content_type": "application/json", "sign": "valid",
              "publish_auth": "basic", "params": [], "channel": "c", "headers": {}})
@example(req={"kind": "publish", "app_id": "real", "body": b'{"event":"e","channel":"c","data":' + b"9" * 30 + b"}",
              "well_formed": False, "content_type": "application/json", "sign": "valid",
              "publish_auth": "basic", "params": [], "channel": "c", "headers": {}})
@example(req={"kind": "events", "app_id": "other", "body": b'{"name":"e","channel":"c","data":"x"}',
              "well_formed": True, "content_type": "application/json", "sign": "bad-signature",
              "publish_auth": "basic", "params": [], "channel": "c", "headers": {}})
@example(req={"kind": "publish", "app_id": "real", "body": b'{"event":"e","channel":"c","data":"x"}',
              "well_formed": True, "content_type": "text/plain", "sign": "valid",
              "publish_auth": "basic", "params": [], "channel": "c", "headers": {}})
def test_signed_api_answers_are_documented_and_the_same_on_both_paths(fuzz_server, fuzz_server_drf, liveness,
                                                                        liveness_drf, req):
    liveness.begin()
    liveness_drf.begin()
    answers = {}
    for name, server in (("fast", fuzz_server), ("drf", fuzz_server_drf)):
        method, target, body, headers = materialize(req, server)
        note(f"{name}: {method} {target[:300]} {headers} body={body[:300]!r}")
        answer = request(server.port, method, target, body, headers)
        note(f"{name}: -> {answer.status} {answer.body[:300]!r}")
        check_answer(answer, req)
        answers[name] = answer.status
    assert answers["fast"] == answers["drf"], f"the two paths disagree: {answers}"
    liveness.check()
    liveness_drf.check()
