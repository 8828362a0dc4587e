"""The allowed-origins grammar, line by line, and that the engine reads it the same way."""

import pytest
from django.core.exceptions import ValidationError

from service.realtime.tenancy import AppInfo
from tenants.origins import MAX_ORIGINS, clean_origins, parse_origin


@pytest.mark.parametrize(("line", "normalised"), [
    ("https://app.example.com", "https://app.example.com"),
    ("  HTTPS://App.Example.COM/  ", "https://app.example.com"),
    ("http://localhost:3000", "http://localhost:3000"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[::1]:8080", "http://[::1]:8080"),
    ("*.example.com", "*.example.com"),
    ("*", "*"),
])
def test_valid_entries(line, normalised):
    assert parse_origin(line) == normalised


@pytest.mark.parametrize("line", [
    "example.com", "//example.com", "ws://example.com", "https://", "https://example.com/app",
    "https://example.com?x=1", "https://example.com#top", "https://me@example.com", "https://exa_mple.com",
    "https://example.com:0", "https://example.com:70000", "https://example.com:http", "https://*.example.com",
    "*.", "*.-bad-.com", "**", "https://-example.com", "http://[nothex]:80",
])
def test_invalid_entries(line):
    with pytest.raises(ValueError):
        parse_origin(line)


def test_clean_reports_every_bad_line_with_its_number():
    with pytest.raises(ValidationError) as caught:
        clean_origins("https://ok.example\nbad one\n\nftp://x.example")
    messages = caught.value.messages
    assert len(messages) == 2
    assert messages[0].startswith("Line 2, “bad one”:")
    assert messages[1].startswith("Line 4, “ftp://x.example”:")


def test_clean_limits_the_number_of_entries():
    with pytest.raises(ValidationError):
        clean_origins("\n".join(f"https://a{i}.example.com" for i in range(MAX_ORIGINS + 1)))


@pytest.mark.parametrize(("allowed", "origin", "expected"), [
    ("https://app.example.com", "https://app.example.com", True),
    ("https://app.example.com", "http://app.example.com", False),
    ("https://app.example.com", "https://app.example.com:8443", False),
    ("*.example.com", "https://eu.example.com", True),
    ("*.example.com", "https://notexample.com", False),
    ("http://localhost:3000", "http://localhost:3000", True),
])
def test_the_engine_matches_what_the_dashboard_saves(allowed, origin, expected):
    info = AppInfo(id=1, key="k", secret="s", allowed_origins=tuple(clean_origins(allowed).splitlines()))
    assert info.origin_allowed(origin) is expected
