"""Allowed origins are parsed strictly (issue 9, finding 7d): an entry is exactly what a browser
sends in its Origin header, since every entry is also written into the SDK frame page's
``Content-Security-Policy: frame-ancestors`` header. Junk after an IPv6 literal, CSP
separators, whitespace and control characters (which ``urlsplit`` silently drops) are refused.
"""

import pytest
from django.core.exceptions import ValidationError

from tenants.origins import clean_origins, parse_origin

JUNK = [
    "http://[::1]junk",
    "http://[::1]junk:8080",
    "http://[::1]:8080junk",
    "http://[::1];script-src",
    "http://[::1]*",
    "https://[::1]]",
    "https://[[::1]]",
    "http://[fe80::1%25eth0]",  # zone ids never appear in an Origin header
    "http://[fe80::1%eth0]",
    "http://[::1]:8080/x",
    "https://exa\nmple.com",  # urlsplit drops \n, \r and \t: the entry itself would keep them
    "https://exa\rmple.com",
    "https://exa\tmple.com",
    "https://example.com\x00",
    "https://example.com;",
    "https://example.com;default-src",
    "https://example.com,https://evil.example",
    "https://example.com https://evil.example",
    "https://example.com'",
    "https://exämple.com",
    "*.example.com;script-src",
    "*.example.com\nx",
    "*.exa mple.com",
    "https://example.com:",
    "https://example.com:+80",
    "https://example.com:８０",  # full-width digits
]


@pytest.mark.parametrize("line", JUNK, ids=[repr(line) for line in JUNK])
def test_junk_is_refused(line):
    with pytest.raises(ValueError):
        parse_origin(line)
    with pytest.raises(ValidationError):
        clean_origins(line)


@pytest.mark.parametrize(("line", "normalised"), [
    ("http://[::1]", "http://[::1]"),
    ("http://[::1]:8080", "http://[::1]:8080"),
    ("https://[2001:DB8::1]:443/", "https://[2001:db8::1]:443"),
    ("http://[::ffff:192.0.2.1]:9000", "http://[::ffff:192.0.2.1]:9000"),
    ("https://app.example.com", "https://app.example.com"),
    ("http://127.0.0.1:65535", "http://127.0.0.1:65535"),
    ("*.example.com", "*.example.com"),
])
def test_real_origins_still_pass(line, normalised):
    assert parse_origin(line) == normalised


def test_every_saved_entry_is_safe_in_a_csp_header():
    saved = clean_origins("https://a.example\nhttp://[::1]:3000\n*.b.example\n")
    for entry in saved.splitlines():
        assert entry.isascii() and entry.isprintable()
        assert not any(c in entry for c in " ;,'\"\\\r\n\t")


@pytest.mark.parametrize("junk", ["http://[::1]junk", "http://[::1]:3000junk", "https://exa\tmple.com"])
def test_the_dashboard_refuses_junk_so_it_never_reaches_the_frame_csp(alice_client, alice_app, junk):
    from django.urls import reverse

    from service.realtime.tenancy import forget_apps

    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]), {
        "name": "Shop", "max_message_bytes": 10240, "allowed_origins": f"https://shop.example\n{junk}"})
    assert response.status_code == 200 and response.context["form"].errors["allowed_origins"]
    alice_app.refresh_from_db()
    assert alice_app.allowed_origins == ""
    response = alice_client.post(reverse("tenants:app_settings", args=[alice_app.id]), {
        "name": "Shop", "max_message_bytes": 10240, "allowed_origins": "https://shop.example\nhttp://[::1]:3000"})
    assert response.status_code == 302
    forget_apps()
    frame = alice_client.get("/sdk/v1/frame.html", {"key": alice_app.key})
    assert frame.status_code == 200
    assert frame["Content-Security-Policy"].endswith("frame-ancestors https://shop.example http://[::1]:3000")
