"""Recovery in the dashboard, in Chromium: the debug console's channel history form shows the
messages kept for a channel with their positions, and the usage page's "Message recovery" card
follows the usage API."""

import re

import pytest

from tests.support.processes import wait_until


@pytest.mark.browser
def test_console_history_and_usage_recovery_card(tabcast, signed_up_with_an_app):
    errors = []
    page, app_id, _ = signed_up_with_an_app("history@console.test", page_errors=errors)

    page.goto(f"{tabcast.http}/dashboard/apps/{app_id}/console/")
    for i in range(2):  # the console's own test events, published by the server
        page.fill("#publish-form input[name=channel]", "orders")
        page.fill("#publish-form input[name=event]", f"order-{i}")
        page.fill("#publish-form textarea[name=data]", f'{{"id": {i}}}')
        page.click("#publish-form button[type=submit]")
        page.locator("#publish-result", has_text=f"Published order-{i} on orders.").wait_for()

    page.fill("#history-form input[name=channel]", "orders")
    page.click("#history-form button[type=submit]")
    page.locator("#history-result", has_text="2 messages on orders, oldest first").wait_for()
    rows = page.locator("#history-rows tr").all_inner_texts()
    assert [row.split("\t")[1:] for row in rows] == [["order-0", '{"id": 0}'], ["order-1", '{"id": 1}']]
    positions = [row.split("\t")[0] for row in rows]
    assert all(re.fullmatch(r"[0-9a-z]+:\d+", p) for p in positions) and positions[0] != positions[1]
    assert page.url.endswith("/console/")  # the script answered in place

    page.fill("#history-form input[name=channel]", "not a channel")
    page.click("#history-form button[type=submit]")
    page.locator("#history-form .field__error.js").wait_for()
    assert page.locator("#history-table").is_hidden() is False  # the last good answer stays

    # The usage page shows the two stored messages once the flush counted them and it persisted them.
    usage = f"{tabcast.http}/dashboard/apps/{app_id}/usage/"
    wait_until(lambda: page.request.get(f"{tabcast.http}/dashboard/api/apps/{app_id}/usage").json()
               ["summary"]["stored_messages"] == 2, 10, interval=0.3, what="two stored messages counted")
    page.goto(usage)
    assert page.locator("#kpi-stored-messages").inner_text() == "2"
    assert page.locator("#kpi-resumes-recovered").inner_text() == "0"
    assert re.fullmatch(r"\d+ B", page.locator("#kpi-stored-bytes").inner_text())
    page.click('.segmented__item[data-range="30d"]')
    page.locator("#recovery-range", has_text="Over the last 30 days").wait_for()
    assert page.locator("#kpi-stored-messages").inner_text() == "2"
    assert "This app keeps 100 messages per channel for 120 s" in page.locator("#history-settings").inner_text()
    assert errors == []
    page.context.close()
