"""The history script (streams.APPEND_AND_PUBLISH) on a real Redis: the message it publishes is
the layer message plus the recorded frame and its position, whatever the message holds.

The script appends three msgpack entries to the message the publisher packed (Redis never
unpacks and repacks it), so the publisher's map header must already count them: a map of up
to 12 entries stays a fixmap, more becomes map16, a map16 near its limit becomes map32.
"""

import msgpack
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from service.realtime import streams

pytestmark = pytest.mark.redis

values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20),
                   st.binary(max_size=20), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3))


@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k not in ("frame", "epoch", "offset")), values,
                       max_size=40))
def test_three_more_entries_make_one_map(message):
    packed = streams.script_message(msgpack.packb(message))
    appended = b"".join(msgpack.packb(v) for v in ("frame", "f", "epoch", "e", "offset", 7))
    assert msgpack.unpackb(packed + appended, strict_map_key=False) == {**message, "frame": "f", "epoch": "e",
                                                                        "offset": 7}


def test_a_map_at_the_edge_of_map16_becomes_map32():
    message = {i: i for i in range(0xFFFF)}
    packed = streams.script_message(msgpack.packb(message))
    assert packed[0] == 0xDF
    appended = b"".join(msgpack.packb(v) for v in ("frame", "f", "epoch", "e", "offset", 1))
    assert len(msgpack.unpackb(packed + appended, strict_map_key=False)) == 0xFFFF + 3


def test_anything_but_a_map_is_refused():
    with pytest.raises(ValueError):
        streams.script_message(msgpack.packb([1, 2]))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 20), st.integers(1, 5))
def test_the_script_publishes_the_message_with_its_frame_and_position(redis_url, entries, size):
    connection = redis.Redis.from_url(redis_url)
    listener = connection.pubsub()
    try:
        group = f"tc.1.script-{entries}-{size}"
        connection.delete(*streams.redis_keys("test-script", group))
        listener.subscribe("script-test")
        assert listener.get_message(timeout=5)["type"] == "subscribe"
        message = {"type": "tc.publish", **{f"k{i}": i for i in range(entries)}}
        fixed = streams.fixed_args("test-script", group, streams.Stream(group, size, 60), "PUBLISH", "script-test")
        for n in range(1, size + 3):
            frame = f'{{"event":"e","channel":"c","data":"{n}"}}'
            receivers = connection.eval(streams.APPEND_AND_PUBLISH, 2, *fixed, frame[:-1],
                                        streams.script_message(msgpack.packb(message)))
            assert receivers == 1
            got = msgpack.unpackb(listener.get_message(timeout=5)["data"])
            epoch = got.pop("epoch")
            assert got == {**message, "offset": n, "frame": f'{frame[:-1]},"position":"{epoch}:{n}"}}'}
        kept = [f.decode() for f in connection.lrange(streams.redis_keys("test-script", group)[1], 0, -1)]
        assert [streams.position_of(f).offset for f in kept] == list(range(size + 2, 2, -1))  # newest first, `size` kept
        assert 0 < connection.pttl(streams.redis_keys("test-script", group)[1]) <= 60_000
    finally:
        listener.close()
        connection.close()
