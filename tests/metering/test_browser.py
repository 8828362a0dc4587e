"""In Chromium: a new customer's demo tabs show up live as 1 connection and N clients, and the
debug console shows a test event published from it. Screenshots go to test-artifacts/."""

from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DEMO_TABS = 4  # the demo opens 3 tabs; the test adds one


@pytest.mark.browser
def test_overview_and_console_live_through_tabcast(tabcast, signed_up_with_an_app):
    server = tabcast
    ARTIFACTS.mkdir(exist_ok=True)
    page, app_id, key = signed_up_with_an_app("ada@usage-page.test", team="Analytical Engines",
                                              viewport={"width": 1360, "height": 1000})
    context = page.context

    demo = context.new_page()
    demo.goto(f"{server.http}/demo/?key={key}")
    demo.click("#add-tab")

    page.goto(f"{server.http}/dashboard/apps/{app_id}/console/")
    page.wait_for_selector("#live-state.badge--on")
    for channel, event in (("orders", "created"), ("tabcast-demo", "console-test")):
        page.fill("input[name=channel]", channel)
        page.fill("input[name=event]", event)
        page.fill("textarea[name=data]", '{"text": "Hello from the console"}')
        page.click("#publish-form button[type=submit]")
        page.locator(".console-row--published", has_text=channel).wait_for()
    row = page.locator(".console-row--published", has_text="tabcast-demo")
    assert "console-test" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
    page.fill("#channel-filter", "tabcast")
    assert row.is_visible()
    assert not page.locator(".console-row--published", has_text="orders").is_visible()

    page.goto(f"{server.http}/dashboard/apps/{app_id}/overview/")
    page.wait_for_selector("#live-state.badge--on")
    page.wait_for_function("document.getElementById('kpi-sockets').textContent === '1' && "
                           f"document.getElementById('kpi-tabs').textContent === '{DEMO_TABS}'")
    assert page.inner_text("#kpi-saved") == str(DEMO_TABS - 1)
    # The savings come from the persisted counters: the peak, and the one frame that reached
    # all the demo's tabs (the "orders" event had no subscriber).
    connections = page.locator('.saving[data-key="connections"]')
    connections.locator(".saving__value", has_text=f"{DEMO_TABS - 1} connections").wait_for()
    assert f"{DEMO_TABS} tabs shared 1 WebSocket connection" in connections.inner_text()
    frames = page.locator('.saving[data-key="deliveries"]')
    frames.locator(".saving__value", has_text=f"{DEMO_TABS - 1} frames").wait_for()
    assert f"1 frame instead of {DEMO_TABS}" in frames.inner_text()
    page.wait_for_function("document.getElementById('live-connections').dataset.samples >= 4")  # a few seconds drawn
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    context.close()
