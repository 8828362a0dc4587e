"""Channel-name grammar and the Channels group names derived from it."""

import re

import pytest

from service.realtime import channel_names
from service.realtime.channel_names import Kind, group_name, invalid_reason, is_cache, kind_of

CHANNELS_GROUP_RE = re.compile(r"^[a-zA-Z0-9\-_.]{1,99}$")


@pytest.mark.parametrize("name,kind", [
    ("orders", Kind.PUBLIC), ("cache-x", Kind.PUBLIC), ("private-x", Kind.PRIVATE),
    ("private-encrypted-x", Kind.ENCRYPTED), ("presence-room", Kind.PRESENCE),
    ("#server-to-user-42", Kind.USER), ("foo-private-bar", Kind.PUBLIC),
])
def test_kind_by_prefix(name, kind):
    assert kind_of(name) == kind


def test_cache_prefixes():
    assert all(is_cache(n) for n in ["cache-a", "private-cache-a", "private-encrypted-cache-a", "presence-cache-a"])
    assert not is_cache("private-a")


def test_names_follow_pushers_character_rules():
    assert invalid_reason("foo-bar_1234@=,.;", 200) is None
    assert invalid_reason("#server-to-user-abc", 200) is None
    assert invalid_reason("has space", 200)
    assert invalid_reason("#other", 200)
    assert invalid_reason("", 200)
    assert invalid_reason(None, 200)
    assert "longer" in invalid_reason("x" * 201, 200)


def test_group_names_are_valid_for_channels_and_unique_per_app():
    long_weird = "presence-" + "=@,.;" * 38
    for name in ["orders", long_weird, "#server-to-user-1"]:
        assert CHANNELS_GROUP_RE.match(group_name(1, name))
    assert group_name(1, "orders") != group_name(2, "orders")
    assert group_name(1, "a.b") != group_name(1, "a_b")
    assert channel_names.CONTROL_GROUP != group_name(1, "control")
