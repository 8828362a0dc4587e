"""In Chromium: a new customer's demo tabs show up live as 1 connection and N clients, and the
debug console shows a test event published from it. Screenshots go to test-artifacts/."""

import re
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
DEMO_TABS = 4  # the demo opens 3 tabs; the test adds one


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: bin/test installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.browser
def test_overview_and_console_live_through_tabcast(tabcast, browser):
    server = tabcast
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15000)

    page.goto(f"{server.http}/signup/")
    page.fill("input[name=email]", "ada@usage-page.test")
    page.fill("input[name=password]", "a long enough passphrase")
    page.fill("input[name=team]", "Analytical Engines")
    page.click("main button[type=submit]")
    page.goto(f"{server.http}/dashboard/apps/new/")
    page.fill("input[name=name]", "Storefront")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard/apps/\d+/$"))
    app_id = int(re.search(r"/apps/(\d+)/", page.url).group(1))
    key = page.locator("[data-app-key]").inner_text().strip()

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
