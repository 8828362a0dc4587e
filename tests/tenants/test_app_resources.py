"""Issue 13, customers: the app page links to its demo (when switched on) and to the docs, which
this install serves itself; the demo page has a way back and a favicon; every unknown or
missing demo key gets the demo's own page; the app's tabs are named after their URLs."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from tenants.views.docs import DOCS

pytestmark = pytest.mark.django_db


def detail(client, app) -> str:
    return client.get(reverse("tenants:app_detail", args=[app.id])).content.decode()


def test_the_demo_link_is_shown_only_when_the_apps_demo_is_on(alice_client, alice_app):
    demo_url = f'{reverse("sdk:demo")}?key={alice_app.key}'
    page = detail(alice_client, alice_app)
    assert 'id="demo-link"' not in page and demo_url not in page
    assert 'id="demo-off"' in page  # says where to switch it on

    alice_app.demo_enabled = True
    alice_app.save()
    page = detail(alice_client, alice_app)
    assert re.search(rf'<a id="demo-link" href="{re.escape(demo_url)}"', page)
    assert 'id="demo-off"' not in page


def test_the_app_page_links_to_every_doc_and_each_link_serves_it(alice_client, alice_app):
    page = detail(alice_client, alice_app)
    for slug in ("readme", "protocol", "sdk", "metering"):
        assert f'href="{reverse("tenants:doc", args=[slug])}"' in page, slug
    for slug, (title, path, _) in DOCS.items():
        url = reverse("tenants:doc", args=[slug])
        # Anyone may read the docs, logged in or not: a fresh install serves them itself.
        response = Client().get(url)
        assert response.status_code == 200, slug
        html = response.content.decode()
        assert f'data-path="{path}"' in html and f"<title>{title} · Docs" in html
        assert "<h1" in html or "<h2" in html  # rendered Markdown, not the raw file
    index = Client().get(reverse("tenants:doc_index")).content.decode()
    assert all(reverse("tenants:doc", args=[slug]) in index for slug in DOCS)
    assert Client().get(reverse("tenants:doc", args=["nope"])).status_code == 404


def test_docs_link_to_each_other_and_anchor_their_headings(client):
    readme = client.get(reverse("tenants:doc", args=["readme"])).content.decode()
    assert '<h2 id="configuration">Configuration</h2>' in readme
    # README's relative link to another shipped document opens its page here, anchor kept.
    assert 'href="/docs/metering/#quotas"' in readme
    assert '<h2 id="quotas">' in client.get("/docs/metering/").content.decode()


def test_the_demo_page_links_back_and_has_a_favicon(alice, alice_app):
    alice_app.demo_enabled = True
    alice_app.save()
    url = f'{reverse("sdk:demo")}?key={alice_app.key}'
    favicon = '<link rel="icon" href="/static/tabcast/favicon.svg"'

    visitor = Client().get(url).content.decode()
    assert favicon in visitor
    assert re.search(rf'<a id="demo-back" href="{reverse("tenants:home")}"', visitor)
    assert f'href="{reverse("tenants:login")}"' in visitor

    member = Client()
    member.force_login(alice)
    page = member.get(url).content.decode()
    assert favicon in page
    assert re.search(rf'<a id="demo-back" href="{reverse("tenants:app_list")}"', page)


@pytest.mark.parametrize("query", ["", "?key=", "?key=unknown0123456789", "?key=bad%20key", "?key=" + "x" * 300])
@pytest.mark.parametrize("path", ["sdk:demo", "sdk:demo_tab"])
def test_every_unknown_or_missing_demo_key_gets_the_demos_own_page(query, path):
    response = Client().get(reverse(path) + query)
    html = response.content.decode()
    assert response.status_code == 404
    assert 'id="demo-unavailable"' in html and "No demo for this key" in html
    assert "belongs to another team" not in html  # not the dashboard's 404
    assert '<link rel="icon"' in html and 'id="demo-back"' in html


def test_a_known_key_with_the_demo_off_gets_the_same_page_as_an_unknown_one(alice_app, bob):
    stranger = Client()
    stranger.force_login(bob)  # logged in, but on another team
    html = stranger.get(f'{reverse("sdk:demo")}?key={alice_app.key}').content.decode()
    assert 'id="demo-unavailable"' in html and "belongs to another team" not in html
    assert re.search(rf'<a id="demo-back" href="{reverse("tenants:app_list")}"', html)


def test_tab_labels_match_their_urls(alice_client, alice_app):
    page = detail(alice_client, alice_app)
    tabs = dict((label, href) for href, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>',
                                                             page.split('<nav class="tabs"', 1)[1].split("</nav>")[0]))
    assert tabs["Overview"] == reverse("tenants:app_detail", args=[alice_app.id])
    assert tabs["Usage"] == f"/dashboard/apps/{alice_app.id}/usage/"
    assert tabs["Debug console"] == f"/dashboard/apps/{alice_app.id}/console/"
    assert tabs["Settings"].endswith("/settings/")
    # The usage page is marked as the current tab, under its new address and its old one.
    for url in (f"/dashboard/apps/{alice_app.id}/usage/", f"/dashboard/apps/{alice_app.id}/overview/"):
        usage = alice_client.get(url).content.decode()
        assert re.search(r'<a href="[^"]+/usage/" class="is-active" aria-current="page">Usage</a>', usage), url
