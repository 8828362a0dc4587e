"""pusher-js 8 receives what the official `pusher` server libraries publish."""

from tests.support.clients import node_backend, python_backend


def test_public_channel_event_from_python_library(app, pusherjs):
    client = pusherjs(app).connected()
    client.subscribe("orders")
    python_backend(app).trigger(["orders"], "created", {"id": 7})
    event = client.wait_for(type="event", channel="orders", event="created")
    assert event["data"] == {"id": 7}


def test_public_channel_event_from_node_library(app, pusherjs):
    client = pusherjs(app).connected()
    client.subscribe("news")
    result = node_backend(app, "trigger", channels=["news"], event="headline", data={"title": "hi"})
    assert result["status"] == 200
    assert client.wait_for(type="event", channel="news", event="headline")["data"] == {"title": "hi"}
