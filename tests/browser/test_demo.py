"""The live demo page on the Tabcast origin: frames share one socket, the counter proves it."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_for_stats
from tests.support.clients import python_backend

pytestmark = pytest.mark.browser


def in_every_frame(page, selector: str) -> list:
    """A locator of ``selector`` inside each demo tab frame."""
    return [page.frame_locator("#tabs iframe").nth(i).locator(selector)
            for i in range(page.locator("#tabs iframe").count())]


def test_demo_frames_share_one_connection_and_all_receive_a_publish(server, new_context):
    app = server.create_app("demo", demo=True)
    page = new_context().new_page()
    page.goto(f"{server.http}/demo/?key={app['key']}")
    page.click("#add-tab")
    page.click("#add-tab")
    expect(page.locator("#tabs iframe")).to_have_count(5)
    for state in in_every_frame(page, "#state"):
        expect(state).to_have_text("connected", timeout=15_000)
    for transport in in_every_frame(page, "#transport"):
        expect(transport).to_have_text("shared-worker")
    for members in in_every_frame(page, "#members"):  # presence: one member per browser
        expect(members).to_have_text("1", timeout=15_000)
    expect(page.locator("#stat-connections")).to_have_text("1", timeout=15_000)
    expect(page.locator("#stat-tabs")).to_have_text("5", timeout=15_000)

    page.fill("#publish-text", "hello, every frame")
    page.click("#publish button[type=submit]")
    expect(page.locator("#publish-status")).to_have_text("sent")
    for events in in_every_frame(page, "#events"):
        expect(events).to_contain_text("hello, every frame", timeout=15_000)

    # What bin/start prints to try from a terminal: any event on the demo channel shows up.
    python_backend(app).trigger(["tabcast-demo"], "hello", {"text": "hi from a terminal"})
    for events in in_every_frame(page, "#events"):
        expect(events).to_contain_text("hi from a terminal", timeout=15_000)

    page.click("#remove-tab")
    expect(page.locator("#stat-tabs")).to_have_text("4", timeout=15_000)
    expect(page.locator("#stat-connections")).to_have_text("1")

    page.check("#transport input[value=direct]")  # one socket per tab: the counter grows
    expect(page.locator("#stat-connections")).to_have_text("4", timeout=20_000)
    wait_for_stats(server, app["key"], connections=4, tabs=4)

    page.check("#transport input[value=leader]")  # one frame leads, the others relay through it
    for transport in in_every_frame(page, "#transport"):
        expect(transport).to_have_text("leader", timeout=15_000)
    expect(page.locator("#stat-connections")).to_have_text("1", timeout=20_000)
    wait_for_stats(server, app["key"], connections=1, tabs=4)
