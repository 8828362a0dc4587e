"""pusher:signin, server-to-user messages, and terminating a user's connections."""

from tests.support.clients import node_backend, python_backend
from tests.support.raw import RawClient
from service.realtime import signatures


def test_signin_then_send_to_user_from_python_library(app, pusherjs):
    client = pusherjs(app).connected()
    client.send("signin", user={"id": "u-1", "user_info": {"name": "Ann"}})
    client.wait_for(type="signed_in")
    python_backend(app).send_to_user("u-1", "notice", {"text": "hi"})
    event = client.wait_for(type="user_event", event="notice")
    assert event["data"] == {"text": "hi"}


def test_send_to_user_from_node_library_reaches_every_socket_of_that_user(app, pusherjs):
    tabs = [pusherjs(app).connected() for _ in range(2)]
    other = pusherjs(app).connected()
    for c in tabs:
        c.send("signin", user={"id": "shared"})
    other.send("signin", user={"id": "someone-else"})
    for c in tabs + [other]:
        c.wait_for(type="signed_in")
    assert node_backend(app, "sendToUser", user_id="shared", event="ping", data={"n": 1})["status"] == 200
    for c in tabs:
        assert c.wait_for(type="user_event", event="ping")["data"] == {"n": 1}
    node_backend(app, "sendToUser", user_id="someone-else", event="mine", data={})
    # "mine" was sent after "ping" to the same server: a wrongly delivered ping came before it.
    other.assert_none_before({"type": "user_event", "event": "mine"}, {"type": "user_event", "event": "ping"})


def test_terminate_user_connections_with_either_library(app, pusherjs):
    victim, bystander = pusherjs(app).connected(), pusherjs(app).connected()
    victim.send("signin", user={"id": "bad-actor"})
    bystander.send("signin", user={"id": "good"})
    victim.wait_for(type="signed_in")
    bystander.wait_for(type="signed_in")

    python_backend(app).terminate_user_connections("bad-actor")  # the library's path has no /apps/{id}
    victim.wait_for(type="connection_error")
    assert victim.wait_for(type="state", current="disconnected")

    assert node_backend(app, "terminateUserConnections", user_id="good")["status"] == 200
    bystander.wait_for(type="state", current="disconnected")


async def test_bad_signin_is_refused_with_4009(tabcast, app):
    client = await RawClient.established(tabcast, app["key"])
    await client.send({"event": "pusher:signin", "data": {"auth": f"{app['key']}:{'0' * 64}",
                                                          "user_data": '{"id":"x"}'}})
    assert (await client.recv_event("pusher:error"))["data"]["code"] == 4009
    assert (await client.closed())[0] == 4009


async def test_signin_needs_an_id(tabcast, app):
    client = await RawClient.established(tabcast, app["key"])
    user_data = '{"name":"no id"}'
    auth = f"{app['key']}:{signatures.sign(app['secret'], signatures.user_auth_message(client.socket_id, user_data))}"
    await client.send({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})
    error = await client.recv_event("pusher:error")
    assert error["data"]["code"] == 4009 and '"id"' in error["data"]["message"]
