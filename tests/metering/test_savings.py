"""Savings: computed from the counters, one plain sentence each; polling constants measured."""

import http.client
import re

from billing.savings import POLL_REQUEST_BYTES, POLL_RESPONSE_HEADER_BYTES, human_bytes, savings

USAGE = {"messages": 10, "deliveries": 30, "bytes": 3000, "logical_deliveries": 50, "logical_bytes": 5000,
         "tab_seconds": 100.0, "peak_sockets": 3, "peak_tabs": 5}


def by_key(usage=USAGE):
    return {saving.key: saving for saving in savings(usage)}


def test_connections_saved_are_logical_minus_physical():
    saving = by_key()["connections"]
    assert saving.value == 2 and saving.display == "2 connections"
    assert saving.sentence == ("At the peak, 5 tabs shared 3 WebSocket connections: 2 fewer open, and billed, "
                               "than with one socket per tab.")


def test_frames_and_bytes_saved_compare_with_one_socket_per_tab():
    frames, sent = by_key()["deliveries"], by_key()["bytes"]
    assert frames.value == 20 and "30 frames instead of 50" in frames.sentence
    assert sent.value == 2000 and sent.display == "2.0 kB"
    assert sent.sentence == "Those frames took 3.0 kB instead of 5.0 kB."


def test_polling_costs_a_request_per_tab_second_plus_the_payloads():
    polling = by_key()["polling"]
    poll_bytes = 100 * (POLL_REQUEST_BYTES + POLL_RESPONSE_HEADER_BYTES) + 5000
    assert polling.value == poll_bytes - 3000
    assert "100 requests" in polling.sentence


def test_polling_card_shows_one_byte_count():
    """The card's headline is its only byte figure: no "38.2 kB" beside "at least 38.8 kB"."""
    polling = by_key({**USAGE, "tab_seconds": 100.0, "bytes": 600, "logical_bytes": 600})["polling"]
    assert polling.value == 100 * (POLL_REQUEST_BYTES + POLL_RESPONSE_HEADER_BYTES)  # the 600 B of frames: both ways
    assert polling.display == human_bytes(polling.value) == "35.9 kB"
    assert not re.search(r"\d(\.\d)? ?[kMGT]?B\b", polling.sentence), polling.sentence


def test_singular_and_empty_usage_read_naturally():
    idle = by_key({**USAGE, "peak_sockets": 1, "peak_tabs": 1, "deliveries": 1, "logical_deliveries": 1})
    assert "1 tab shared 1 WebSocket connection: 0 fewer open" in idle["connections"].sentence
    assert all(s.value == 0 for s in savings(dict.fromkeys(USAGE, 0)))


def test_polling_header_sizes_match_this_server(tabcast):
    """The constants are what a minimal poll against a running Tabcast costs (give or take the port)."""
    class Recording(http.client.HTTPConnection):
        sent = b""

        def send(self, data):
            self.sent += data
            super().send(data)

    connection = Recording("127.0.0.1", tabcast.port)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    head = f"HTTP/1.1 {response.status} {response.reason}\r\n".encode() + b"".join(
        f"{name}: {value}\r\n".encode() for name, value in response.getheaders()) + b"\r\n"
    connection.close()
    assert abs(len(connection.sent) - POLL_REQUEST_BYTES) <= 3  # the Host header carries the port
    assert len(head) == POLL_RESPONSE_HEADER_BYTES
