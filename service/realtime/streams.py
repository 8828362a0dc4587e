"""Channel streams: each message of a channel gets a position, and the last ones are kept.

docs/recovery.md is the user's view. Here:

* a **position** is ``<epoch>:<offset>``; the offset goes up by one per message of the channel,
  the epoch changes when the stream's history is lost;
* the **channel layer owns the streams**, because the append must be atomic with the publish:
  with Redis one Lua script (``APPEND_AND_PUBLISH``) assigns the offset, keeps the frame and
  PUBLISHes it, so every process receives a channel's messages in offset order; embedded,
  ``MemoryStreams.append`` runs synchronously just before the in-process send;
* the frame a process receives already carries its position (the last field, added by
  :func:`positioned`), and the layer message carries ``epoch`` and ``offset`` beside it, so
  nothing is parsed per delivery.

A stream keeps the last ``size`` frames for ``ttl`` seconds after the channel's last publish
(as Centrifugo's streams do), and its epoch and top offset for ``META_TTL`` after its last use.
"""

import heapq
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

META_TTL = 24 * 3600  # seconds an idle stream keeps its epoch and top offset (longer than any history ttl)
POSITION_RE = re.compile(r"([0-9a-z]{1,32}):(0|[1-9][0-9]{0,17})")
_POSITION_FIELD = ',"position":"'


class InvalidPosition(ValueError):
    """A position that is not ``<epoch>:<offset>``."""


@dataclass(frozen=True, slots=True)
class Position:
    epoch: str
    offset: int

    def __str__(self) -> str:
        return f"{self.epoch}:{self.offset}"

    @classmethod
    def parse(cls, text: object) -> "Position":
        match = POSITION_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidPosition("A position is <epoch>:<offset>, as in the \"position\" field of a frame")
        return cls(match[1], int(match[2]))


class Stream(NamedTuple):
    """What a publish asks the layer to record: the channel's stream and its history limits.

    A tuple, not a dataclass: one is made per publish, and a frozen dataclass costs ~1 µs more."""

    group: str  # the channel's group name: names the stream (it holds the app id)
    size: int  # frames kept
    ttl: int  # seconds kept after the channel's last publish


@dataclass(frozen=True, slots=True)
class HistoryPage:
    top: Position  # the stream's position now (offset 0: nothing published yet)
    frames: list[tuple[int, str]]  # (offset, frame), oldest first
    kept: int  # frames the stream holds now

    def gap_after(self, since: Position) -> str | None:
        """None if every message after ``since`` is still kept; else why not (docs/recovery.md reasons)."""
        if since.epoch != self.top.epoch:
            return "epoch_changed"
        if since.offset > self.top.offset:
            return "future"
        if self.top.offset - since.offset > self.kept:
            return "too_old"
        return None


def positioned(frame: str, epoch: str, offset: int) -> str:
    """The frame (a JSON object) with ``"position"`` as its last field."""
    return f'{frame[:-1]}{_POSITION_FIELD}{epoch}:{offset}"}}'


def position_of(frame: str) -> Position | None:
    """The position of a frame made by :func:`positioned`, None for any other frame.

    The position is always the frame's last field, so the last match is it: a JSON string
    inside the frame cannot contain the unescaped quotes of ``,"position":"``."""
    at = frame.rfind(_POSITION_FIELD)
    if at < 0 or not frame.endswith('"}'):
        return None
    match = POSITION_RE.fullmatch(frame, at + len(_POSITION_FIELD), len(frame) - 2)
    return Position(match[1], int(match[2])) if match else None


def new_epoch() -> str:
    return secrets.token_hex(4)


# --- embedded: in process memory ---


class _MemoryStream:
    __slots__ = ("epoch", "top", "frames", "expires", "used")

    def __init__(self) -> None:
        self.epoch = new_epoch()
        self.top = 0
        self.frames: deque[str] = deque()
        self.expires = 0.0  # monotonic time the frames go (ttl after the last publish)
        self.used = time.monotonic()  # last append or read: the epoch goes META_TTL after it


class MemoryStreams:
    """Streams of the embedded mode. Gone with the process: a restart is a new epoch."""

    def __init__(self) -> None:
        self._streams: dict[str, _MemoryStream] = {}
        self._expiring: list[tuple[float, str]] = []  # (when, group): a heap, checked lazily
        self._next_sweep = 0.0

    def append(self, stream: Stream, frame: str) -> tuple[str, str, int]:
        """Record a frame; returns (the frame with its position, epoch, offset)."""
        now = time.monotonic()
        state = self._streams.get(stream.group)
        if state is None:
            state = self._streams[stream.group] = _MemoryStream()
        elif state.frames and state.expires <= now:
            state.frames.clear()
        state.top += 1
        frame = positioned(frame, state.epoch, state.top)
        frames = state.frames
        frames.append(frame)
        while len(frames) > stream.size:
            frames.popleft()
        if state.expires <= now:  # not on the heap yet (or its entry is stale): schedule the check
            heapq.heappush(self._expiring, (now + stream.ttl, stream.group))
        state.expires = now + stream.ttl
        state.used = now
        if now >= self._next_sweep:
            self._sweep(now)
        return frame, state.epoch, state.top

    def read(self, group: str, since: Position | None, limit: int) -> HistoryPage:
        """The stream's top and up to ``limit`` frames: after ``since`` (oldest first) if it is of
        this epoch, else the newest ``limit``. Creates the stream (its epoch) if it is new."""
        now = time.monotonic()
        state = self._streams.get(group)
        if state is None:
            state = self._streams[group] = _MemoryStream()
        if state.frames and state.expires <= now:
            state.frames.clear()
        state.used = now
        frames = list(state.frames)
        first = state.top - len(frames) + 1  # offset of frames[0]
        if since is not None and since.epoch == state.epoch and since.offset < state.top:
            skip = max(since.offset + 1 - first, 0)
            chosen = frames[skip:skip + limit]
            first += skip
        else:
            chosen = frames[-limit:] if limit > 0 else []
            first = state.top - len(chosen) + 1
        if since is not None and since.epoch == state.epoch and since.offset >= state.top:
            chosen = []
        return HistoryPage(Position(state.epoch, state.top), list(enumerate(chosen, first)), len(frames))

    def _sweep(self, now: float) -> None:
        """Free frames past their ttl and streams idle past META_TTL (at most once a second)."""
        self._next_sweep = now + 1.0
        expiring = self._expiring
        while expiring and expiring[0][0] <= now:
            _, group = heapq.heappop(expiring)
            state = self._streams.get(group)
            if state is None:
                continue
            if state.expires <= now:
                state.frames.clear()
                heapq.heappush(expiring, (state.used + META_TTL, group))
            if not state.frames and state.used + META_TTL <= now:
                del self._streams[group]
            elif state.frames:
                heapq.heappush(expiring, (state.expires, group))


# --- Redis: one Lua script per publish ---


def redis_keys(prefix: str, group: str) -> list[str]:
    """The stream's keys: its meta hash (epoch, top) and its list of frames (newest first).

    Both carry the group name as their hash tag, so in a Redis Cluster they live in one slot,
    with the group's sharded pub/sub channel (which a cluster layer tags the same way)."""
    return [f"{prefix}:{{{group}}}:stream", f"{prefix}:{{{group}}}:history"]


# KEYS: meta, history. ARGV: size, ttl ms, meta ttl ms, the PUBLISH command ("PUBLISH" or
# "SPUBLISH"), the pub/sub channel (these five are fixed per stream: ``fixed_args``), the frame
# without its closing brace, and the layer message without "frame", "epoch" and "offset"
# (``script_message``: msgpack, its map header already counting the three entries the script
# appends, so Redis never unpacks and repacks it). Returns PUBLISH's reply (receivers).
APPEND_AND_PUBLISH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local now = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(now[1]) % 1048576, tonumber(now[2]))
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local frame = ARGV[6] .. ',"position":"' .. epoch .. ':' .. offset .. '"}'
if redis.call('LPUSH', KEYS[2], frame) > tonumber(ARGV[1]) then
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return redis.call(ARGV[4], ARGV[5], ARGV[7] .. cmsgpack.pack('frame', frame, 'epoch', epoch, 'offset', offset))
"""


def fixed_args(prefix: str, group: str, stream: Stream, command: str, channel: str) -> tuple[bytes, ...]:
    """APPEND_AND_PUBLISH's keys and the arguments that are the same for every publish to the
    stream, encoded (a publisher may keep them: redis-py then has nothing to convert)."""
    return (*(key.encode() for key in redis_keys(prefix, group)), b"%d" % stream.size, b"%d" % (stream.ttl * 1000),
            b"%d" % (META_TTL * 1000), command.encode(), channel.encode())


_MAP16, _MAP32 = 0xDE, 0xDF


def script_message(packed: bytes) -> bytes:
    """A msgpack map (the layer message without its frame) with its header counting three more
    entries: APPEND_AND_PUBLISH appends "frame", "epoch" and "offset" by concatenation."""
    first = packed[0]
    if 0x80 <= first <= 0x8F:
        count = (first & 0x0F) + 3
        if count <= 0x0F:
            return bytes((0x80 | count,)) + packed[1:]
        return bytes((_MAP16,)) + count.to_bytes(2, "big") + packed[1:]
    if first == _MAP16:
        count = int.from_bytes(packed[1:3], "big") + 3
        if count <= 0xFFFF:
            return bytes((_MAP16,)) + count.to_bytes(2, "big") + packed[3:]
        return bytes((_MAP32,)) + count.to_bytes(4, "big") + packed[3:]
    if first == _MAP32:
        return bytes((_MAP32,)) + (int.from_bytes(packed[1:5], "big") + 3).to_bytes(4, "big") + packed[5:]
    raise ValueError("the layer message must serialize to a plain msgpack map")


# KEYS: meta, history. ARGV: since epoch ('' for none), since offset, limit, meta ttl ms.
# Returns {epoch, top, kept, frames newest first}: after `since` (the oldest `limit` of them) if
# it is of this epoch, else the newest `limit`. Creates the epoch of a new stream.
READ = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local now = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(now[1]) % 1048576, tonumber(now[2]))
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local top = tonumber(redis.call('HGET', KEYS[1], 'top') or '0')
local kept = redis.call('LLEN', KEYS[2])
local limit = tonumber(ARGV[3])
local start, stop = 0, limit - 1
if ARGV[1] == epoch then
  local newer = math.min(top - tonumber(ARGV[2]), kept)
  start, stop = math.max(newer - limit, 0), newer - 1
end
local frames = {}
if stop >= start and limit > 0 then frames = redis.call('LRANGE', KEYS[2], start, stop) end
return {epoch, top, kept, frames}
"""


def page_from_reply(reply: list) -> HistoryPage:
    """A HistoryPage from READ's reply."""
    epoch, top, kept, frames = reply
    epoch = epoch.decode() if isinstance(epoch, bytes) else epoch
    decoded = [f.decode() if isinstance(f, bytes) else f for f in reversed(frames)]
    chosen = []
    for frame in decoded:
        position = position_of(frame)
        if position is not None:
            chosen.append((position.offset, frame))
    return HistoryPage(Position(epoch, int(top)), chosen, int(kept))
