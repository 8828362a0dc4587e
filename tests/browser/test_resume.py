"""Resume in a real browser (docs/recovery.md, "The browser SDK"): the hub that owns the one
socket resumes every channel after a drop, once for all its tabs. Every tab gets each message
it missed once, in order, then ``tabcast:resumed``; a tab that joined meanwhile gets neither.

The tabs reach Tabcast through a ``NetworkLink`` the test cuts; messages are published over
HTTP straight to the server meanwhile."""

import threading

import pytest

from tests.browser.conftest import (listen_and_wait, open_tabs, publish_numbered, resumes, wait_for_number,
                                    wait_for_stats)
from tests.support.processes import wait_until

pytestmark = pytest.mark.browser

CHANNEL = "orders"


@pytest.fixture
def cuttable(server, network_link, customer_sites):
    """``cuttable(name, **app_settings)`` -> (app, link, site): an app (history for 500 messages
    unless told otherwise) and a customer site whose SDK reaches Tabcast only through ``link``."""

    def make(name: str, **settings):
        app = server.create_app(name, client_events=True, demo=True, **{"history_size": 500, **settings})
        link = network_link(server.port)
        return app, link, customer_sites(link.http, app)

    return make


def cut(link, pages) -> None:
    link.cut()
    for page in pages:
        page.wait_for_function("() => tabcast.connection.state !== 'connected'")


def wait_resumed(pages, count: int = 1) -> None:
    for page in pages:
        page.wait_for_function("([c, n]) => eventsOf(c, 'tabcast:resumed').length >= n", arg=[CHANNEL, count],
                               timeout=30_000)


def wait_new_socket(pages, old: str) -> None:
    for page in pages:
        page.wait_for_function("old => tabcast.connection.state === 'connected' && "
                               "tabcast.connection.socket_id !== old", arg=old, timeout=30_000)


def restore_and_check_the_resume(app: dict, link, pages) -> None:
    """Restore the link after 11..210 were published: each page resumes once, recovering those
    200, and gets 1..215 each once, in order."""
    link.restore()
    wait_resumed(pages)
    publish_numbered(app, CHANNEL, 211, 215)

    for page in pages:
        assert wait_for_number(page, CHANNEL, 215) == list(range(1, 216))
        assert resumes(page, CHANNEL) == [{"recovered": True, "missed": 200}]


def hub_lost_while_publishing(app: dict, pages, lose_hub) -> None:
    """Publish 1..200 in the background and ``lose_hub()`` once the first page got 30 of them;
    then every page gets a new socket, one resume that recovers, and 1..205 each once in order."""
    old_socket = pages[0].evaluate("tabcast.connection.socket_id")
    publisher = threading.Thread(target=publish_numbered, args=(app, CHANNEL, 1, 200))
    publisher.start()
    pages[0].wait_for_function("c => eventsOf(c, 'n').length >= 30", arg=CHANNEL)
    lose_hub()
    publisher.join()
    wait_new_socket(pages, old_socket)
    wait_resumed(pages)
    publish_numbered(app, CHANNEL, 201, 205)

    for page in pages:
        assert wait_for_number(page, CHANNEL, 205) == list(range(1, 206))
        assert [r["recovered"] for r in resumes(page, CHANNEL)] == [True]


def test_every_tab_of_a_shared_worker_gets_what_the_socket_missed_once_in_order(
        server, cuttable, new_context):
    app, link, site = cuttable("resume-cut")
    pages = open_tabs(new_context(), site.url(key=app["key"]), 5)
    listen_and_wait(pages, CHANNEL)
    assert {page.evaluate("tabcast.transport") for page in pages} == {"shared-worker"}
    wait_for_stats(server, app["key"], connections=1, tabs=5)
    publish_numbered(app, CHANNEL, 1, 10)
    for page in pages:
        wait_for_number(page, CHANNEL, 10)

    cut(link, pages)
    publish_numbered(app, CHANNEL, 11, 210)
    restore_and_check_the_resume(app, link, pages)
    wait_for_stats(server, app["key"], connections=1, tabs=5)  # one socket resumed for all five


def shared_worker_target(cdp, key: str) -> str:
    workers = [t for t in cdp.send("Target.getTargets")["targetInfos"]
               if t["type"] == "shared_worker" and t["title"].startswith(f"tabcast:{key}")]
    assert len(workers) == 1, workers
    return workers[0]["targetId"]


# The Tabcast worker through the hidden iframe, or the customer's one-line stub on its own origin.
@pytest.mark.parametrize("worker_url", [None, "/tabcast-worker.js"], ids=["frame", "stub"])
def test_a_restarted_shared_worker_resumes_from_the_positions_its_tabs_hand_it(
        browser, server, cuttable, new_context, worker_url):
    app, _, site = cuttable(f"resume-worker-{bool(worker_url)}")
    query = {"workerUrl": worker_url} if worker_url else {}
    pages = open_tabs(new_context(), site.url(key=app["key"], **query), 5)
    listen_and_wait(pages, CHANNEL)
    cdp = browser.new_browser_cdp_session()
    worker = shared_worker_target(cdp, app["key"])

    # The worker dies, its ports stay silent. Each tab learns the worker is gone (its lock),
    # starts a new one and tells it its positions.
    hub_lost_while_publishing(app, pages, lambda: cdp.send("Target.closeTarget", {"targetId": worker}))
    assert shared_worker_target(cdp, app["key"]) != worker
    wait_for_stats(server, app["key"], connections=1, tabs=5)


def leaders(pages) -> list:
    return [page for page in pages if page.evaluate("tabcast.link.election.isLeader")]


def test_a_new_leader_tab_resumes_what_was_missed_while_disconnected(server, cuttable, new_context):
    app, link, site = cuttable("resume-leader-offline")
    pages = open_tabs(new_context(), site.url(key=app["key"], transport="leader"), 5)
    listen_and_wait(pages, CHANNEL)
    wait_for_stats(server, app["key"], connections=1, tabs=5)
    publish_numbered(app, CHANNEL, 1, 10)
    for page in pages:
        wait_for_number(page, CHANNEL, 10)
    (leader,) = leaders(pages)
    followers = [page for page in pages if page is not leader]

    cut(link, pages)
    publish_numbered(app, CHANNEL, 11, 110)
    leader.close()  # the next tab in the Web Lock queue becomes the hub, still offline
    wait_until(lambda: len(leaders(followers)) == 1, 10, what="a new leader tab")
    publish_numbered(app, CHANNEL, 111, 210)
    restore_and_check_the_resume(app, link, followers)
    wait_for_stats(server, app["key"], connections=1, tabs=4)


def test_a_new_leader_tab_resumes_when_the_leader_closes_while_messages_flow(server, cuttable, new_context):
    app, _, site = cuttable("resume-leader-live")
    pages = open_tabs(new_context(), site.url(key=app["key"], transport="leader"), 5)
    listen_and_wait(pages, CHANNEL)
    (leader,) = leaders(pages)
    followers = [page for page in pages if page is not leader]
    hub_lost_while_publishing(app, followers, leader.close)


def test_a_tab_joining_the_shared_socket_is_not_replayed_what_it_did_not_miss(server, cuttable, new_context):
    app, link, site = cuttable("resume-join")
    context = new_context()
    first, second, bystander = open_tabs(context, site.url(key=app["key"]), 3)
    listen_and_wait([first, second], CHANNEL)
    listen_and_wait([bystander], "elsewhere")
    publish_numbered(app, CHANNEL, 1, 5)
    for page in (first, second):
        wait_for_number(page, CHANNEL, 5)

    # A new tab on a live channel starts from now.
    (late,) = open_tabs(context, site.url(key=app["key"]), 1)
    listen_and_wait([late], CHANNEL)
    publish_numbered(app, CHANNEL, 6, 6)
    assert wait_for_number(late, CHANNEL, 6) == [6]

    # A tab wanting the channel while the socket is down joins after the resume's replay.
    cut(link, [first, second, late, bystander])
    publish_numbered(app, CHANNEL, 7, 9)
    bystander.evaluate("c => listen(c)", CHANNEL)
    link.restore()
    wait_resumed([first, second, late])
    bystander.wait_for_function("c => tabcast.channel(c).subscribed", arg=CHANNEL)
    publish_numbered(app, CHANNEL, 10, 10)

    for page in (first, second):
        assert wait_for_number(page, CHANNEL, 10) == list(range(1, 11))
        assert resumes(page, CHANNEL) == [{"recovered": True, "missed": 3}]
    assert wait_for_number(late, CHANNEL, 10) == list(range(6, 11))
    assert resumes(late, CHANNEL) == [{"recovered": True, "missed": 3}]
    assert wait_for_number(bystander, CHANNEL, 10) == [10]
    assert resumes(bystander, CHANNEL) == []


def test_the_page_is_told_when_what_it_missed_has_left_the_history(server, cuttable, new_context):
    app, link, site = cuttable("resume-lost", history_size=5)
    pages = open_tabs(new_context(), site.url(key=app["key"]), 3)
    listen_and_wait(pages, CHANNEL)
    publish_numbered(app, CHANNEL, 1, 1)
    for page in pages:
        wait_for_number(page, CHANNEL, 1)

    cut(link, pages)
    publish_numbered(app, CHANNEL, 2, 21)  # 20 messages, history keeps 5
    link.restore()
    wait_resumed(pages)
    lost = {"recovered": False, "missed": 0, "reason": "too_old"}
    for page in pages:
        assert resumes(page, CHANNEL) == [lost]

    # The stream goes on from where the server was: a drop with nothing missed is recovered.
    cut(link, pages)
    link.restore()
    wait_resumed(pages, 2)
    publish_numbered(app, CHANNEL, 22, 22)
    for page in pages:
        assert wait_for_number(page, CHANNEL, 22) == [1, 22]
        assert resumes(page, CHANNEL) == [lost, {"recovered": True, "missed": 0}]


@pytest.mark.parametrize("transport", ["shared-worker", "leader"])
def test_a_tab_back_from_the_back_forward_cache_is_told_it_missed_messages(
        server, customer_sites, bfcache_context, transport):
    """The shared socket went on without the cached tab: it cannot replay for one tab, so the
    tab is told (recovered: false) instead of silently missing what came meanwhile."""
    app = server.create_app(f"resume-bfcache-{transport}", client_events=True, demo=True, history_size=500)
    site = customer_sites(server.http, app)
    away, staying = open_tabs(bfcache_context, site.url(key=app["key"], transport=transport), 2)
    listen_and_wait([away, staying], CHANNEL)
    publish_numbered(app, CHANNEL, 1, 2)
    for page in (away, staying):
        wait_for_number(page, CHANNEL, 2)

    url = away.url
    away.goto(f"{site.origin}/away.html")
    wait_for_stats(server, app["key"], connections=1, tabs=1)
    staying.wait_for_function("() => tabcast.connection.state === 'connected'")  # (a new leader, in leader mode)
    publish_numbered(app, CHANNEL, 3, 5)
    wait_for_number(staying, CHANNEL, 5)
    away.go_back(wait_until="commit")
    assert away.url == url
    away.wait_for_function("() => window.restoredFromCache === true")
    wait_resumed([away])
    publish_numbered(app, CHANNEL, 6, 6)

    assert wait_for_number(away, CHANNEL, 6) == [1, 2, 6]
    assert resumes(away, CHANNEL) == [{"recovered": False, "missed": 0, "reason": "rejoined"}]
    assert wait_for_number(staying, CHANNEL, 6) == list(range(1, 7))
    assert all(r["recovered"] for r in resumes(staying, CHANNEL))
