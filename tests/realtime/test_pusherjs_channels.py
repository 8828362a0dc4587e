"""pusher-js 8 on private, presence, cache and encrypted channels, fed by the official `pusher` library."""

import base64
import os

from tests.support.clients import node_backend, python_backend
from tests.support.processes import wait_until

MASTER_KEY = base64.b64encode(os.urandom(32)).decode()


def test_private_channel(app, pusherjs):
    client = pusherjs(app).connected()
    client.subscribe("private-orders")
    python_backend(app).trigger("private-orders", "paid", {"total": 12})
    assert client.wait_for(type="event", channel="private-orders", event="paid")["data"] == {"total": 12}


def test_private_channel_with_wrong_signature_gets_auth_error(app, pusherjs):
    client = pusherjs(app).connected()
    client.send("subscribe", channel="private-secret", bad_auth=True)
    error = client.wait_for(type="subscription_error", channel="private-secret")["error"]
    assert error["type"] == "AuthError" and error["status"] == 401
    client.subscribe("private-other")  # the connection keeps serving
    python_backend(app).trigger("private-other", "ok", {})
    client.wait_for(type="event", channel="private-other", event="ok")


def test_presence_members_joins_and_leaves(app, pusherjs):
    john = pusherjs(app).connected()
    joined = john.subscribe("presence-room", user_id=1, user_info={"name": "John"})
    assert joined["members"]["count"] == 1 and joined["members"]["me"]["id"] in (1, "1")

    alice = pusherjs(app).connected()
    assert alice.subscribe("presence-room", user_id=2, user_info={"name": "Alice"})["members"]["count"] == 2
    added = john.wait_for(type="event", channel="presence-room", event="pusher:member_added")
    assert added["data"] == {"id": 2, "info": {"name": "Alice"}}  # numeric ids survive

    python_backend(app).trigger("presence-room", "hello", {"n": 1})
    john.wait_for(type="event", channel="presence-room", event="hello")
    alice.wait_for(type="event", channel="presence-room", event="hello")

    alice.send("disconnect")
    removed = john.wait_for(type="event", channel="presence-room", event="pusher:member_removed")
    assert removed["data"]["id"] == 2


def test_presence_one_member_per_user_across_connections(app, pusherjs):
    observer = pusherjs(app).connected()
    observer.subscribe("presence-team", user_id="obs", user_info={})
    first = pusherjs(app).connected()
    first.subscribe("presence-team", user_id="u7", user_info={"tab": 1})
    observer.wait_for(type="event", channel="presence-team", event="pusher:member_added")
    second = pusherjs(app).connected()
    assert second.subscribe("presence-team", user_id="u7", user_info={"tab": 2})["members"]["count"] == 2

    users = python_backend(app).users_info("presence-team")["users"]
    assert sorted(u["id"] for u in users) == ["obs", "u7"]

    first.send("disconnect")
    # The user still has a connection: no member_removed. Once the server has processed the leave
    # (the channel counts one socket less), a publish on the channel follows any member_removed.
    wait_until(lambda: python_backend(app).channel_info("presence-team", ["subscription_count"])
               ["subscription_count"] == 2, 10, what="the server to see the first socket go")
    python_backend(app).trigger("presence-team", "marker", {})
    observer.assert_none_before({"type": "event", "channel": "presence-team", "event": "marker"},
                                {"type": "event", "event": "pusher:member_removed"},
                                {"type": "event", "event": "pusher:member_added"})

    second.send("disconnect")
    assert observer.wait_for(type="event", channel="presence-team", event="pusher:member_removed")["data"]["id"] == "u7"


def test_cache_channel_sends_last_event_or_cache_miss(app, pusherjs):
    first = pusherjs(app).connected()
    first.subscribe("cache-prices")
    miss = first.wait_for(type="event", channel="cache-prices", event="pusher:cache_miss")
    assert miss["undefined_data"] is True
    python_backend(app).trigger("cache-prices", "price", {"eur": 3})
    first.wait_for(type="event", channel="cache-prices", event="price")

    late = pusherjs(app).connected()
    late.subscribe("cache-prices")
    assert late.wait_for(type="event", channel="cache-prices", event="price")["data"] == {"eur": 3}
    python_backend(app).trigger("cache-prices", "marker", {})  # a cache_miss would have come first
    late.assert_none_before({"type": "event", "channel": "cache-prices", "event": "marker"},
                            {"type": "event", "event": "pusher:cache_miss"})


def test_encrypted_channel_is_relayed_end_to_end(app, pusherjs):
    client = pusherjs(app, masterKey=MASTER_KEY).connected()
    client.subscribe("private-encrypted-vault")
    python_backend(app, encryption_master_key_base64=MASTER_KEY).trigger(
        "private-encrypted-vault", "secret", {"pin": "1234"})
    assert client.wait_for(type="event", channel="private-encrypted-vault", event="secret")["data"] == {"pin": "1234"}


def test_node_library_batch_trigger(app, pusherjs):
    client = pusherjs(app).connected()
    client.subscribe("batch-a")
    client.subscribe("private-batch-b")
    result = node_backend(app, "triggerBatch", batch=[
        {"channel": "batch-a", "name": "one", "data": {"weird": "abc/d"}},
        {"channel": "private-batch-b", "name": "two", "data": "plain"},
    ])
    assert result["status"] == 200
    assert client.wait_for(type="event", channel="batch-a", event="one")["data"] == {"weird": "abc/d"}
    assert client.wait_for(type="event", channel="private-batch-b", event="two")["data"] == "plain"
