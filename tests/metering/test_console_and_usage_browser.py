"""Issue 13, customers, in Chromium at 1280 px: the debug console wraps long origins, socket ids
and channel names inside its card and keeps the last minutes of events across a reload; the
usage page's "last 5 minutes" chart starts filled from what the server recorded; the polling
card shows one number."""

import json
import re

import pytest
from websockets.sync.client import connect

from tests.support.processes import wait_until

LONG_ORIGIN = "https://" + "a-rather-long-subdomain-" * 4 + "of." + "customer-" * 6 + "example.com"
LONG_CHANNEL = "orders-" + "0123456789abcdef" * 9


OVERFLOW = """() => {
  const log = document.getElementById("console-log").getBoundingClientRect();
  const cells = [...document.querySelectorAll("#console-rows td, #console-rows .console-detail")];
  return {
    logScroll: document.getElementById("console-log").scrollWidth - document.getElementById("console-log").clientWidth,
    beyond: cells.filter((el) => el.getBoundingClientRect().right > log.right + 1).map((el) => el.textContent),
  };
}"""


@pytest.mark.browser
def test_console_wraps_long_values_and_keeps_its_events_across_a_reload(tabcast, signed_up_with_an_app):
    page, app_id, key = signed_up_with_an_app("wrap@console.test")  # 1280 px wide
    page.goto(f"{tabcast.http}/dashboard/apps/{app_id}/console/")
    page.wait_for_selector("#live-state.badge--on")

    with connect(f"{tabcast.ws}/app/{key}?protocol=7", origin=LONG_ORIGIN) as ws:
        socket_id = json.loads(json.loads(ws.recv(timeout=5))["data"])["socket_id"]
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": LONG_CHANNEL}}))
        assert json.loads(ws.recv(timeout=5))["event"] == "pusher_internal:subscription_succeeded"
        connected = page.locator(".console-row--connected", has_text=socket_id)
        connected.wait_for()
        page.locator(".console-row--subscribed", has_text=LONG_CHANNEL).wait_for()
        assert LONG_ORIGIN in connected.inner_text()

        # Nothing is clipped: the table fits its card, each cell and detail stays inside it.
        measured = page.evaluate(OVERFLOW)
        assert measured == {"logScroll": 0, "beyond": []}, measured
        origin, one_line = connected.locator(".console-origin"), connected.locator(".console-socket")
        box, cell = origin.bounding_box(), connected.locator("td").last.bounding_box()
        assert socket_id in one_line.inner_text()
        assert box["height"] > 1.5 * one_line.bounding_box()["height"]  # wrapped onto several lines
        assert box["x"] + box["width"] <= cell["x"] + cell["width"] + 1

        # A reload keeps what was shown (sessionStorage, per app), marked as restored.
        shown = page.locator("#console-rows .console-row").count()
        page.reload()
        page.wait_for_selector("#console-restored")
        restored = page.locator(".console-row--restored.console-row--connected", has_text=socket_id)
        assert restored.count() == 1 and LONG_ORIGIN in restored.inner_text()
        assert page.locator(".console-row--restored").count() == shown
        assert page.evaluate(OVERFLOW)["beyond"] == []

        # New events keep coming after the reload, and are kept too.
        page.wait_for_selector("#live-state.badge--on")
        ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": LONG_CHANNEL}}))
        page.locator(".console-row--unsubscribed:not(.console-row--restored)", has_text=LONG_CHANNEL).wait_for()
    stored = page.evaluate(f"JSON.parse(sessionStorage.getItem('tabcast-console:private-debug-{app_id}'))")
    assert [e["kind"] for e in stored if e.get("socket_id") == socket_id][:3] == ["connected", "subscribed",
                                                                                  "unsubscribed"]
    page.context.close()


@pytest.mark.browser
def test_usage_chart_starts_filled_from_the_recorded_last_minutes(tabcast, signed_up_with_an_app):
    page, app_id, key = signed_up_with_an_app("filled@usage.test")
    usage_url = f"{tabcast.http}/dashboard/apps/{app_id}/usage/"

    def recorded():
        html = page.request.get(usage_url).text()
        samples = json.loads(re.search(r'<script id="live-history" type="application/json">(.*?)</script>',
                                       html, re.S).group(1))
        return samples if sum(1 for s in samples if s["sockets"] == 1) >= 5 else None

    with connect(f"{tabcast.ws}/app/{key}?protocol=7") as ws:
        ws.recv(timeout=5)
        samples = wait_until(recorded, 20, interval=0.5, what="five seconds of one connection recorded")
        assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)

        page.goto(usage_url, wait_until="load")
        # Drawn at once from the recorded history: the metrics feed adds at most one sample a
        # second, and has not even subscribed yet.
        drawn = page.evaluate("Number(document.getElementById('live-connections').dataset.samples || 0)")
        assert drawn >= 5, drawn
        assert page.locator("#live-connections canvas").count() >= 1

        polling = page.locator('.saving[data-key="polling"]').inner_text()
        assert len(re.findall(r"\d(?:\.\d)? ?[kMGT]?B\b", polling)) == 1, polling  # one number on the card
        assert page.locator('nav.tabs a[aria-current="page"]').inner_text() == "Usage"
    page.context.close()
