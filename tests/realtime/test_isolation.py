"""Two apps using the same channel names never see each other's events, members or counts."""

from tests.support.clients import python_backend


def test_same_channel_name_in_two_apps(tabcast, pusherjs):
    first, second = tabcast.create_apps(2, "tenant-app", client_events=True)
    a, b = pusherjs(first).connected(), pusherjs(second).connected()
    for client in (a, b):
        client.subscribe("orders")
        client.subscribe("presence-room", user_id="same-user", user_info={"app": "?"})
        client.subscribe("private-chat")

    python_backend(first).trigger("orders", "for-first", {})
    python_backend(second).trigger("orders", "for-second", {})
    a.wait_for(type="event", event="for-first")
    b.wait_for(type="event", event="for-second")

    c = pusherjs(first).connected()
    c.subscribe("private-chat")
    c.send("trigger", channel="private-chat", event="client-hello", data={})
    a.wait_for(type="event", event="client-hello")

    # Everything above has arrived where it should; nothing crossed over.
    a.assert_no(within=0.2, type="event", event="for-second")
    b.assert_no(within=0, type="event", event="for-first")
    b.assert_no(within=0, type="event", event="client-hello")
    b.assert_no(within=0, type="event", event="pusher:member_added")

    assert python_backend(second).channel_info("orders", ["subscription_count"])["subscription_count"] == 1
    assert [u["id"] for u in python_backend(second).users_info("presence-room")["users"]] == ["same-user"]


def test_an_app_key_cannot_query_another_app(tabcast):
    first, second = tabcast.create_apps(2, "nosy")
    import pusher

    nosy = python_backend({**first, "app_id": second["app_id"]})
    try:
        nosy.channels_info()
    except pusher.errors.PusherBadAuth:
        return
    raise AssertionError("an app's credentials were accepted for another app's id")
