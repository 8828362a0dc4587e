"""The HTTP history API (docs/recovery.md, "HTTP history API") against a real server, embedded and
on Redis: signing, since/limit, the recovered and more flags, history off, tenant isolation."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from service.realtime import signatures
from tests.support.clients import node_backend, python_backend
from tests.support.processes import TabcastProcess


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def tabcast(request):
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    server = TabcastProcess(redis_url=redis_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_pool(tabcast):
    return tabcast.create_apps(14, "history")


@pytest.fixture
def app(app_pool):
    return app_pool.pop()


def signed(app, path, params=None, secret=None, key=None):
    """``path?query``, signed like the Pusher libraries sign a GET."""
    query = {"auth_key": key or app["key"], "auth_timestamp": str(int(time.time())), "auth_version": "1.0",
             **(params or {})}
    to_sign = signatures.request_string_to_sign("GET", path, query)
    query["auth_signature"] = signatures.sign(secret or app["secret"], to_sign)
    return f"{path}?{urllib.parse.urlencode(query)}"


def get(server, target) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server.http + target, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def history(server, app, channel, app_id=None, **params) -> tuple[int, dict]:
    path = f"/apps/{app['app_id'] if app_id is None else app_id}/channels/{channel}/history"
    return get(server, signed(app, path, {k: str(v) for k, v in params.items()}))


def publish(app, channel, count, start=0) -> None:
    backend = python_backend(app)
    for i in range(start, start + count):
        backend.trigger([channel], "tick", {"i": i})


def offsets(body) -> list[int]:
    return [int(m["position"].rpartition(":")[2]) for m in body["messages"]]


def test_the_node_library_reads_a_channels_history_oldest_first(tabcast, app):
    publish(app, "orders", 5)
    result = node_backend(app, "get", path="/channels/orders/history")
    assert result["status"] == 200
    body = result["body"]
    assert [json.loads(m["data"])["i"] for m in body["messages"]] == [0, 1, 2, 3, 4]
    assert {m["event"] for m in body["messages"]} == {"tick"}
    epoch = body["position"].partition(":")[0]
    assert all(m["position"].startswith(f"{epoch}:") for m in body["messages"])
    assert offsets(body) == list(range(offsets(body)[0], offsets(body)[0] + 5))  # one per message, in order
    assert body["position"] == body["messages"][-1]["position"]
    assert (body["channel"], body["history"], body["more"]) == ("orders", True, False)
    assert "recovered" not in body  # only said with since

    since = body["messages"][1]["position"]
    result = node_backend(app, "get", path="/channels/orders/history", params={"since": since, "limit": "2"})
    assert result["status"] == 200
    assert [json.loads(m["data"])["i"] for m in result["body"]["messages"]] == [2, 3]
    assert result["body"]["recovered"] is True and result["body"]["more"] is True


def test_since_pages_through_the_history_with_more(tabcast, app):
    publish(app, "pages", 7)
    status, first = history(tabcast, app, "pages", limit=3)
    assert status == 200 and [json.loads(m["data"])["i"] for m in first["messages"]] == [4, 5, 6]  # the last 3
    epoch = first["position"].partition(":")[0]
    start = offsets(first)[0] - 5  # the offset before message 0 (0: a new stream)

    seen, since, pages = [], f"{epoch}:{start}", 0
    while True:
        status, page = history(tabcast, app, "pages", since=since, limit=3)
        assert status == 200 and page["recovered"] is True
        seen += [json.loads(m["data"])["i"] for m in page["messages"]]
        pages += 1
        if not page["more"]:
            break
        since = page["messages"][-1]["position"]
    assert seen == list(range(7)) and pages == 3

    status, caught_up = history(tabcast, app, "pages", since=first["position"])
    assert status == 200
    assert (caught_up["messages"], caught_up["recovered"], caught_up["more"]) == ([], True, False)


def test_a_new_channel_has_an_empty_history_at_offset_0(tabcast, app):
    status, body = history(tabcast, app, "never-used")
    assert status == 200
    assert (body["messages"], body["more"], body["history"]) == ([], False, True)
    assert body["position"].endswith(":0")


def test_since_outside_the_history_is_not_recovered(tabcast, app):
    tabcast.update_app(app["app_id"], history_size=3)
    publish(app, "small", 6)
    status, body = history(tabcast, app, "small")
    assert status == 200 and [json.loads(m["data"])["i"] for m in body["messages"]] == [3, 4, 5]
    epoch, _, top = body["position"].partition(":")
    first = int(top) - 5  # the first of the 6 messages, no longer kept

    status, body = history(tabcast, app, "small", since=f"{epoch}:{first}")
    assert status == 200 and body["recovered"] is False  # messages 1 and 2 are gone
    status, body = history(tabcast, app, "small", since=f"{epoch}:{int(top) - 3}")
    assert status == 200 and body["recovered"] is True
    assert [json.loads(m["data"])["i"] for m in body["messages"]] == [3, 4, 5]

    other_epoch = "0" if epoch != "0" else "1"
    status, body = history(tabcast, app, "small", since=f"{other_epoch}:{top}")
    assert status == 200 and body["recovered"] is False  # another epoch: that history is gone
    status, body = history(tabcast, app, "small", since=f"{epoch}:{int(top) + 10}")
    assert status == 200 and body["recovered"] is False  # ahead of the stream


@pytest.mark.parametrize("since", ["nope", "abc", ":5", "abc:", "abc:-1", "abc:01", "ABC:1", "abc:1:2",
                                   "abc:" + "9" * 30, "x" * 101])
def test_a_since_that_is_not_a_position_is_a_400(tabcast, app_pool, since):
    app = app_pool[0]
    status, body = history(tabcast, app, "orders", since=since)
    assert status == 400 and body["code"] == 400
    assert body["error"].startswith("since: ")


def test_an_empty_since_is_a_400(tabcast, app_pool):
    status, body = history(tabcast, app_pool[0], "orders", since="")
    assert status == 400 and body["error"].startswith("since: ")


@pytest.mark.parametrize("limit", ["0", "1001", "-3", "ten", "1.5", ""])
def test_limit_outside_1_to_1000_is_a_400(tabcast, app_pool, limit):
    status, body = history(tabcast, app_pool[0], "orders", limit=limit)
    assert status == 400 and body["code"] == 400 and body["error"].startswith("limit: ")


@pytest.mark.parametrize("limit", ["1", "1000"])
def test_limit_ends_are_accepted(tabcast, app_pool, limit):
    status, body = history(tabcast, app_pool[0], "orders", limit=limit)
    assert status == 200


def test_an_invalid_channel_name_is_a_400(tabcast, app_pool):
    app = app_pool[0]
    path = f"/apps/{app['app_id']}/channels/bad name/history"  # signed unescaped, as the libraries do
    status, body = get(tabcast, signed(app, path).replace(" ", "%20", 1))
    assert status == 400 and "Channel name" in body["error"]


def test_the_request_must_be_signed(tabcast, app):
    publish(app, "guarded", 1)
    path = f"/apps/{app['app_id']}/channels/guarded/history"
    status, body = get(tabcast, path)
    assert status == 401 and body["error"] == "Missing auth_key query parameter"
    status, body = get(tabcast, signed(app, path, secret="not-the-secret"))
    assert status == 401 and body["error"].startswith("Invalid signature")
    status, body = get(tabcast, signed(app, path, {"since": "abc:1"}).replace("since=abc%3A1", "since=abc%3A0"))
    assert status == 401 and body["error"].startswith("Invalid signature")  # the query is signed too


def test_an_unknown_app_is_answered_like_a_bad_signature(tabcast, app):
    unknown = int(app["app_id"]) + 100_000
    status, body = history(tabcast, app, "orders", app_id=unknown)
    assert status == 401 and body["error"].startswith("Invalid signature")
    status_bad, body_bad = get(tabcast, signed(app, f"/apps/{app['app_id']}/channels/orders/history",
                                               secret="wrong"))
    assert (status, body["error"].split(":")[0]) == (status_bad, body_bad["error"].split(":")[0])


def test_an_app_cannot_read_another_apps_history(tabcast, app_pool):
    owner, stranger = app_pool.pop(), app_pool.pop()
    publish(owner, "private-ledger", 3)
    # The stranger's own credentials, aimed at the owner's app id: refused.
    status, body = history(tabcast, stranger, "private-ledger", app_id=owner["app_id"])
    assert status == 401 and "messages" not in body
    # Its own channel of the same name is another stream: empty.
    status, body = history(tabcast, stranger, "private-ledger")
    assert status == 200 and body["messages"] == [] and body["position"].endswith(":0")
    status, body = history(tabcast, owner, "private-ledger")
    assert status == 200 and len(body["messages"]) == 3


def test_history_off_answers_no_messages_and_vouches_for_nothing(tabcast, app):
    publish(app, "before", 2)
    tabcast.update_app(app["app_id"], history_size=0)
    publish(app, "orders", 2)
    status, body = history(tabcast, app, "orders")
    assert status == 200
    assert body == {"channel": "orders", "history": False, "position": None, "messages": [], "more": False}
    status, body = history(tabcast, app, "orders", since="abc:1")
    assert status == 200 and body["history"] is False and body["recovered"] is False
    status, body = history(tabcast, app, "orders", since="not a position")
    assert status == 400  # still checked


def test_a_disabled_app_is_refused(tabcast, app):
    tabcast.update_app(app["app_id"], enabled=False)
    status, body = history(tabcast, app, "orders")
    assert status == 403 and body["error"] == "Application is disabled"
