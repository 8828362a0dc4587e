"""SharedWorker mode: every tab of a browser profile shares one WebSocket."""

import pytest

from tests.browser.conftest import listen_and_wait, open_tabs, stats, wait_connected, wait_for_event, wait_for_stats
from tests.browser.customer_site import encrypting_backend
from tests.support.clients import python_backend
from tests.support.processes import wait_until

pytestmark = pytest.mark.browser


def test_ten_tabs_share_one_connection_and_all_get_events(server, customer, new_context):
    key = customer.app["key"]
    pages = open_tabs(new_context(), customer.url(key=key), 10)
    for page in pages:
        wait_connected(page)
    assert {page.evaluate("tabcast.transport") for page in pages} == {"shared-worker"}
    listen_and_wait(pages, "orders")
    wait_for_stats(server, key, connections=1, tabs=10)

    python_backend(customer.app).trigger(["orders"], "created", {"id": 7})

    for page in pages:
        assert wait_for_event(page, "orders", "created") == [{"id": 7}]
    # One socket id for all: they really are the same connection.
    assert len({page.evaluate("tabcast.connection.socket_id") for page in pages}) == 1


def occupied(app: dict, channel: str) -> bool:
    return python_backend(app).channel_info(channel)["occupied"]


def test_last_tab_leaving_unsubscribes_and_closing_all_tabs_closes_the_socket(server, customer, new_context):
    key = customer.app["key"]
    first, second, third, bystander = open_tabs(new_context(), customer.url(key=key), 4)
    listen_and_wait([first, second, third], "leaving")
    listen_and_wait([bystander], "elsewhere")  # keeps the shared socket open throughout
    wait_for_stats(server, key, connections=1, tabs=4)

    first.close()  # a closed tab is noticed through its Web Lock
    wait_for_stats(server, key, connections=1, tabs=3)
    second.evaluate("tabcast.unsubscribe('leaving')")
    # A wrong pusher:unsubscribe would leave the worker before this subscribe from the same tab
    # (one port, one socket, frames handled in order): once it succeeded, the server saw both.
    listen_and_wait([second], "after-unsubscribe")
    assert occupied(customer.app, "leaving"), "the third tab still wants it"

    third.close()  # the last tab that wanted the channel
    wait_until(lambda: not occupied(customer.app, "leaving"), 10, what="channel to be vacated")
    assert occupied(customer.app, "elsewhere")
    assert stats(server, key)["connections"] == 1

    second.close()
    bystander.close()
    wait_for_stats(server, key, connections=0, tabs=0)


def test_each_tab_gets_only_the_channels_it_subscribed(server, customer, new_context):
    key = customer.app["key"]
    news_tab, sport_tab = open_tabs(new_context(), customer.url(key=key), 2)
    listen_and_wait([news_tab], "news")
    listen_and_wait([sport_tab], "sport")
    backend = python_backend(customer.app)
    backend.trigger(["news"], "headline", {"n": 1})
    backend.trigger(["sport"], "score", {"s": 2})

    assert wait_for_event(news_tab, "news", "headline") == [{"n": 1}]
    assert wait_for_event(sport_tab, "sport", "score") == [{"s": 2}]
    assert news_tab.evaluate("received.map(r => r.event)") == ["pusher:subscription_succeeded", "headline"]
    assert sport_tab.evaluate("received.map(r => r.event)") == ["pusher:subscription_succeeded", "score"]


def test_client_event_reaches_other_tabs_and_other_browsers_but_not_the_sender(server, customer, new_context):
    key = customer.app["key"]
    sender, sibling = open_tabs(new_context(), customer.url(key=key), 2)
    (other_browser,) = open_tabs(new_context(), customer.url(key=key), 1)
    listen_and_wait([sender, sibling, other_browser], "private-chat")

    assert sender.evaluate("tabcast.channel('private-chat').trigger('client-typing', {who: 'A'})") is True

    assert wait_for_event(sibling, "private-chat", "client-typing") == [{"who": "A"}]
    assert wait_for_event(other_browser, "private-chat", "client-typing") == [{"who": "A"}]
    # Both receivers have it, so the sender would have too by now if it were echoed.
    assert sender.evaluate("eventsOf('private-chat', 'client-typing').length") == 0


def test_private_and_presence_channels_through_the_shared_socket(server, customer, new_context):
    key = customer.app["key"]
    alice_tabs = open_tabs(new_context(), customer.url(key=key, user="alice"), 3)
    listen_and_wait(alice_tabs, "presence-room")
    listen_and_wait(alice_tabs, "private-orders")
    for page in alice_tabs:  # one member per user, however many tabs
        assert page.evaluate("tabcast.channel('presence-room').members.count") == 1
        assert page.evaluate("tabcast.channel('presence-room').members.me") == {"id": "alice",
                                                                               "info": {"name": "Alice"}}

    (bob,) = open_tabs(new_context(), customer.url(key=key, user="bob"), 1)
    listen_and_wait([bob], "presence-room")
    assert bob.evaluate("tabcast.channel('presence-room').members.count") == 2
    for page in alice_tabs:
        assert wait_for_event(page, "presence-room", "pusher:member_added") == [{"id": "bob", "info": {"name": "Bob"}}]
        assert page.evaluate("tabcast.channel('presence-room').members.count") == 2

    python_backend(customer.app).trigger(["private-orders"], "paid", {"total": 12})
    for page in alice_tabs:
        assert wait_for_event(page, "private-orders", "paid") == [{"total": 12}]

    bob.close()
    bob_member = {"id": "bob", "info": {"name": "Bob"}}
    for page in alice_tabs:
        assert wait_for_event(page, "presence-room", "pusher:member_removed") == [bob_member]


def test_refused_authorization_is_reported_to_every_tab_that_asked(server, customer, new_context):
    key = customer.app["key"]
    pages = open_tabs(new_context(), customer.url(key=key), 2)
    for page in pages:
        page.evaluate("listen('private-forbidden')")
    for page in pages:
        (error,) = wait_for_event(page, "private-forbidden", "pusher:subscription_error")
        assert error["type"] == "AuthError" and error["status"] == 403


def test_signin_and_user_events(server, customer, new_context):
    key = customer.app["key"]
    pages = open_tabs(new_context(), customer.url(key=key, user="carol"), 2)
    for page in pages:
        page.evaluate("""() => { window.userEvents = [];
            tabcast.user.bind('note', (data) => userEvents.push(data)); tabcast.signin(); }""")
    for page in pages:
        page.wait_for_function("() => tabcast.user.user_data && tabcast.user.user_data.id === 'carol'")

    python_backend(customer.app).send_to_user("carol", "note", {"text": "hi"})
    for page in pages:
        page.wait_for_function("() => userEvents.length === 1")
        assert page.evaluate("userEvents") == [{"text": "hi"}]


def test_encrypted_channel_events_are_decrypted_in_every_tab(server, customer, new_context):
    key = customer.app["key"]
    pages = open_tabs(new_context(), customer.url(key=key), 2)
    listen_and_wait(pages, "private-encrypted-vault")
    encrypting_backend(customer.app).trigger(["private-encrypted-vault"], "opened", {"pin": 1234})
    for page in pages:
        assert wait_for_event(page, "private-encrypted-vault", "opened") == [{"pin": 1234}]
