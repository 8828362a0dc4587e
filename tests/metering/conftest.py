"""Metering tests use the shared teams (tests/support/teams.py); the dashboard tests in
Chromium share ``browser`` and ``signed_up_with_an_app`` from here."""

import os
import re

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium (as in tests/browser), one per test module."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: bin/test installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def signed_up_with_an_app(tabcast, browser):
    """``signed_up_with_an_app(email, team=None, viewport=None, page_errors=None)`` -> (page, app
    id, key): a new customer signed up on the shared server (naming ``team`` if given) and created
    the app "Storefront"; ``page`` shows it, in a context of its own (1280 x 900 px unless
    ``viewport`` says otherwise). ``page_errors``: a list the page's uncaught script errors go to,
    from the sign-up on."""

    def sign_up(email: str, team: str | None = None, viewport: dict | None = None,
                page_errors: list | None = None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15000)
        if page_errors is not None:
            page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.goto(f"{tabcast.http}/signup/")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", "a long enough passphrase")
        if team is not None:
            page.fill("input[name=team]", team)
        page.click("main button[type=submit]")
        page.goto(f"{tabcast.http}/dashboard/apps/new/")
        page.fill("input[name=name]", "Storefront")
        page.click("main button[type=submit]")
        page.wait_for_url(re.compile(r"/dashboard/apps/\d+/$"))
        app_id = int(re.search(r"/apps/(\d+)/", page.url).group(1))
        return page, app_id, page.locator("[data-app-key]").inner_text().strip()

    return sign_up
