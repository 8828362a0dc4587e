"""/metrics is answered before Django: a scraper using the container's address over plain HTTP
reaches it (where the dashboard refuses the Host and redirects to HTTPS), and only with the token."""

import urllib.error
import urllib.request

import pytest

from tests.support.processes import TabcastProcess

TOKEN = "scrape-me"


@pytest.fixture(scope="module")
def deployed():
    """A server with docker/'s HTTPS settings: unknown hosts refused, plain HTTP redirected."""
    server = TabcastProcess(extra_env={"TABCAST_METRICS_TOKEN": TOKEN, "TABCAST_ALLOWED_HOSTS": "tabcast.example,127.0.0.1",
                                       "TABCAST_SSL_REDIRECT": "1", "TABCAST_BEHIND_TLS_PROXY": "1"})
    server.start()
    yield server
    server.stop()


def get(server, path: str, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(server.http + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_scrape_by_the_containers_address_gets_the_metrics(deployed):
    status, body = get(deployed, "/metrics", {"Host": "tabcast-1:8000", "Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and b"tabcast_connections" in body
    # The dashboard on the same address is refused, as Django should.
    assert get(deployed, "/login/", {"Host": "tabcast-1:8000"})[0] == 400


def test_without_the_token_the_metrics_are_refused(deployed):
    assert get(deployed, "/metrics", {"Host": "tabcast-1:8000"})[0] == 403
    assert get(deployed, "/metrics", {"Host": "tabcast-1:8000", "Authorization": "Bearer wrong"})[0] == 403
