"""The wire format: what frames look like and how bad ones are rejected."""

import json

import pytest

from service.realtime import codes, protocol


def test_server_frames_double_encode_data():
    frame = json.loads(protocol.event("created", "orders", {"id": 1}))
    assert frame == {"event": "created", "channel": "orders", "data": '{"id":1}'}
    assert json.loads(protocol.event("raw", "orders", "plain text"))["data"] == "plain text"


def test_connection_established_shape():
    frame = json.loads(protocol.connection_established("1.2", 120))
    assert json.loads(frame["data"]) == {"socket_id": "1.2", "activity_timeout": 120}


def test_cache_miss_has_no_data_key():
    assert json.loads(protocol.cache_miss("cache-x")) == {"event": "pusher:cache_miss", "channel": "cache-x"}


def test_errors_carry_code_and_message_objects():
    assert json.loads(protocol.error(4301, "nope", "private-a")) == {
        "event": "pusher:error", "channel": "private-a", "data": {"code": 4301, "message": "nope"}}


@pytest.mark.parametrize("text", ["not json", "[1,2]", '"str"', "{}", '{"event": 5}', '{"event":"x","channel":3}'])
def test_decode_rejects_non_envelopes(text):
    with pytest.raises(protocol.ProtocolError) as raised:
        protocol.decode(text)
    assert raised.value.code == codes.INVALID_MESSAGE


def test_decode_accepts_string_or_object_data_for_system_events():
    as_object = protocol.decode('{"event":"pusher:subscribe","data":{"channel":"a"}}')
    as_string = protocol.decode('{"event":"pusher:subscribe","data":"{\\"channel\\":\\"a\\"}"}')
    assert as_object.data == as_string.data == {"channel": "a"}
