"""What sharing one socket between tabs saved, from real counters, each with its one-sentence why."""

from dataclasses import dataclass

# One poll as measured against this server (manage.py serve, uvicorn) with Python's
# http.client: `GET /healthz HTTP/1.1` with Host and Accept-Encoding is 75 bytes, and the
# response status line plus headers (date, server, content-type, x-frame-options,
# content-length, x-content-type-options, referrer-policy, cross-origin-opener-policy,
# x-request-id) are 284 bytes. A browser adds its User-Agent, Accept and cookies, so these are a floor.
# tests/metering/test_savings.py measures them again against a live server.
POLL_REQUEST_BYTES = 75
POLL_RESPONSE_HEADER_BYTES = 284
POLLS_PER_TAB_SECOND = 1


@dataclass(frozen=True)
class Saving:
    """One saving: a headline number and the sentence that explains it."""

    key: str
    title: str
    value: float
    unit: str
    sentence: str

    @property
    def display(self) -> str:
        """The value as the dashboard shows it: 1.2 MB, 3 connections."""
        return human_bytes(self.value) if self.unit == "bytes" else _count(self.value, self.unit.rstrip("s"))


def human_bytes(n: float) -> str:
    """Bytes in the largest unit that keeps the number readable (1.2 MB)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _count(n: float, word: str = "") -> str:
    """1,234 frames; 1 frame."""
    text = f"{round(n):,}"
    if not word:
        return text
    return f"{text} {word}" if round(n) == 1 else f"{text} {word}s"


def savings(usage: dict) -> list[Saving]:
    """The four savings of a usage summary (dict with the UsageCounters fields)."""
    sockets, tabs = usage["peak_sockets"], usage["peak_tabs"]
    frames, logical_frames = usage["deliveries"], usage["logical_deliveries"]
    sent, logical_sent = usage["bytes"], usage["logical_bytes"]
    polls = usage["tab_seconds"] * POLLS_PER_TAB_SECOND
    poll_bytes = polls * (POLL_REQUEST_BYTES + POLL_RESPONSE_HEADER_BYTES) + logical_sent
    return [
        Saving("connections", "Connections saved", max(tabs - sockets, 0), "connections",
               f"At the peak, {_count(tabs, 'tab')} shared {_count(sockets, 'WebSocket connection')}: "
               f"{_count(max(tabs - sockets, 0))} fewer open, and billed, than with one socket per tab."),
        Saving("deliveries", "Frames saved", max(logical_frames - frames, 0), "frames",
               f"Each event reached all tabs of a browser through one frame: {_count(frames, 'frame')} "
               f"instead of {_count(logical_frames)} with one socket per tab."),
        Saving("bytes", "Bandwidth saved", max(logical_sent - sent, 0), "bytes",
               f"Those frames took {human_bytes(sent)} instead of {human_bytes(logical_sent)}."),
        Saving("polling", "Versus HTTP polling", max(poll_bytes - sent, 0), "bytes",
               # One number on the card: the headline. The sentence explains it without a second,
               # nearly equal byte count (it used to show "38.2 kB" beside "at least 38.8 kB").
               f"Polling once a second from every tab would have made {_count(polls, 'request')}, each "
               f"with at least {POLL_REQUEST_BYTES} + {POLL_RESPONSE_HEADER_BYTES} bytes of headers "
               f"(measured on this server), besides the same payloads: at least this much more traffic "
               f"than Tabcast's pushes."),
    ]
