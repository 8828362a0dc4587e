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

    # Nothing crossed over. A marker published on each channel of each app, after all of the above
    # was processed, reaches every client behind anything wrongly sent to it before.
    # Both joined presence-room as "same-user": neither may see the other's join.
    not_for_a = [{"type": "event", "event": "for-second"}, {"type": "event", "event": "pusher:member_added"}]
    not_for_b = [{"type": "event", "event": "for-first"}, {"type": "event", "event": "client-hello"},
                 {"type": "event", "event": "pusher:member_added"}]
    for app_, client, forbidden in ((first, a, not_for_a), (second, b, not_for_b)):
        python_backend(app_).trigger(["orders", "presence-room", "private-chat"], "marker", {})
        for channel in ("orders", "presence-room", "private-chat"):
            client.assert_none_before({"type": "event", "channel": channel, "event": "marker"}, *forbidden)

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
