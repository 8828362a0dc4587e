"""Two Tabcast processes on one Redis behave as one server, seen through the real Pusher libraries."""

import pytest

from tests.support.clients import node_backend, python_backend
from tests.support.processes import wait_until

from .conftest import on

pytestmark = pytest.mark.redis


def test_publish_on_one_process_reaches_subscribers_on_the_other(cluster, app, pusherjs):
    on_a = pusherjs(app).connected()
    on_b = pusherjs(on(app, cluster.b)).connected()
    on_a.subscribe("orders")
    on_b.subscribe("orders")

    python_backend(on(app, cluster.b)).trigger("orders", "created", {"id": 1})
    assert on_a.wait_for(type="event", channel="orders", event="created")["data"] == {"id": 1}
    assert on_b.wait_for(type="event", channel="orders", event="created")["data"] == {"id": 1}

    assert node_backend(app, "trigger", channels=["orders"], event="shipped", data={"id": 1})["status"] == 200
    assert on_b.wait_for(type="event", channel="orders", event="shipped")["data"] == {"id": 1}


def test_client_events_cross_processes_but_not_back_to_the_sender(cluster, app, pusherjs):
    sender = pusherjs(app).connected()
    receiver = pusherjs(on(app, cluster.b)).connected()
    sender.subscribe("private-chat")
    receiver.subscribe("private-chat")
    sender.send("trigger", channel="private-chat", event="client-typing", data={"who": "a"})
    assert receiver.wait_for(type="event", channel="private-chat", event="client-typing")["data"] == {"who": "a"}
    python_backend(app).trigger("private-chat", "marker", {})
    sender.assert_none_before({"type": "event", "channel": "private-chat", "event": "marker"},
                              {"type": "event", "event": "client-typing"})


def test_presence_member_added_once_per_user_and_removed_after_the_last_socket(cluster, app, pusherjs):
    observer = pusherjs(app).connected()
    observer.subscribe("presence-team", user_id="obs", user_info={})
    tab_on_a = pusherjs(app).connected()
    tab_on_a.subscribe("presence-team", user_id="u7", user_info={"where": "a"})
    assert observer.wait_for(type="event", channel="presence-team", event="pusher:member_added")["data"]["id"] == "u7"

    tab_on_b = pusherjs(on(app, cluster.b)).connected()
    joined = tab_on_b.subscribe("presence-team", user_id="u7", user_info={"where": "b"})
    assert joined["members"]["count"] == 2 and sorted(joined["members"]["ids"]) == ["obs", "u7"]
    # A second member_added would come before this marker, published after the join was made.
    python_backend(on(app, cluster.b)).trigger("presence-team", "marker", {"n": 1})
    observer.assert_none_before({"type": "event", "channel": "presence-team", "event": "marker"},
                                {"type": "event", "event": "pusher:member_added"})

    tab_on_a.send("disconnect")
    wait_until(lambda: python_backend(app).channel_info("presence-team", ["subscription_count"])
               ["subscription_count"] == 2, 10, what="process A to see the socket go")
    python_backend(app).trigger("presence-team", "marker", {"n": 2})  # from A, after its leave
    observer.assert_none_before({"type": "event", "channel": "presence-team", "event": "marker"},
                                {"type": "event", "event": "pusher:member_removed"})
    users = python_backend(app).users_info("presence-team")["users"]
    assert sorted(u["id"] for u in users) == ["obs", "u7"]

    tab_on_b.send("disconnect")
    assert observer.wait_for(type="event", channel="presence-team", event="pusher:member_removed")["data"]["id"] == "u7"


def test_channel_queries_agree_from_either_process(cluster, app, pusherjs):
    for server, channel, user in ((cluster.a, "presence-lobby", "1"), (cluster.b, "presence-lobby", "2"),
                                  (cluster.b, "presence-lobby", "2")):
        pusherjs(on(app, server)).connected().subscribe(channel, user_id=user, user_info={})
    for server in (cluster.a, cluster.b):
        pusherjs(on(app, server)).connected().subscribe("news")

    for server in (cluster.a, cluster.b):
        backend = python_backend(on(app, server))
        assert backend.channels_info()["channels"] == {
            "news": {"subscription_count": 2}, "presence-lobby": {"subscription_count": 3}}
        assert backend.channels_info("presence-", ["user_count"])["channels"] == {
            "presence-lobby": {"subscription_count": 3, "user_count": 2}}
        assert backend.channel_info("news", ["subscription_count"]) == {"occupied": True, "subscription_count": 2}
        assert sorted(u["id"] for u in backend.users_info("presence-lobby")["users"]) == ["1", "2"]


def test_terminate_connections_reaches_a_socket_on_the_other_process(cluster, app, pusherjs):
    victim = pusherjs(app).connected()
    bystander = pusherjs(on(app, cluster.b)).connected()
    victim.send("signin", user={"id": "bad-actor"})
    bystander.send("signin", user={"id": "good"})
    victim.wait_for(type="signed_in")
    bystander.wait_for(type="signed_in")

    python_backend(on(app, cluster.b)).terminate_user_connections("bad-actor")
    victim.wait_for(type="connection_error")
    victim.wait_for(type="state", current="disconnected")
    node_backend(on(app, cluster.b), "sendToUser", user_id="good", event="still-here", data={})
    bystander.assert_none_before({"type": "user_event", "event": "still-here"},
                                 {"type": "state", "current": "disconnected"})


def test_a_killed_process_drops_out_of_members_and_counts(cluster, app, pusherjs):
    doomed = cluster.start()
    survivor = pusherjs(app).connected()
    survivor.subscribe("presence-room", user_id="stays", user_info={})
    ghost = pusherjs(on(app, doomed)).connected()
    ghost.subscribe("presence-room", user_id="ghost", user_info={})
    ghost.subscribe("news")
    backend = python_backend(app)
    assert sorted(u["id"] for u in backend.users_info("presence-room")["users"]) == ["ghost", "stays"]

    doomed.kill()  # SIGKILL: no goodbye, its entries in Redis stay behind until they expire

    # A surviving process reaps the dead one and tells the channel its users left.
    removed = survivor.wait_for(timeout=15, type="event", channel="presence-room", event="pusher:member_removed")
    assert removed["data"]["id"] == "ghost"
    wait_until(lambda: [u["id"] for u in backend.users_info("presence-room")["users"]] == ["stays"],
               timeout=15, what="the killed process's member to drop out")
    assert backend.channels_info()["channels"] == {"presence-room": {"subscription_count": 1}}
    assert backend.channel_info("news", ["subscription_count"]) == {"occupied": False, "subscription_count": 0}
