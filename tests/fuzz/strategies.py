"""Hypothesis strategies for hostile input: JSON values, channel names, Pusher frames, WebSocket frames."""

import json
import string
from dataclasses import dataclass

from hypothesis import strategies as st

from .wire import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT

NAME_CHARS = string.ascii_letters + string.digits + "_-=@,.;"
PREFIXES = ["", "private-", "presence-", "private-encrypted-", "cache-", "private-cache-", "presence-cache-",
            "#server-to-user-", "private-encrypted-cache-"]

HUGE_NUMBERS = st.sampled_from([2 ** 53, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -(2 ** 63),
                                -(2 ** 63) - 1, 10 ** 30, -(10 ** 400), 1e308, -1e-308, 5e-324, 0.1])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), HUGE_NUMBERS,
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.text(st.characters(codec="utf-8", categories=["Cs", "Co", "Cc", "Zs", "Lo"]), max_size=8),
)

json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=25,
)


def nested(depth: int, leaf: str = "0") -> str:
    """JSON text nested ``depth`` levels (lists and objects alternating)."""
    opens, closes = [], []
    for level in range(depth):
        if level % 2:
            opens.append('{"a":')
            closes.append("}")
        else:
            opens.append("[")
            closes.append("]")
    return "".join(opens) + leaf + "".join(reversed(closes))


deep_json = st.builds(nested, st.sampled_from([10, 500, 1000, 1023, 1024, 1025, 1500, 5000, 20000]))

valid_names = st.builds(lambda prefix, body: prefix + body, st.sampled_from(PREFIXES),
                        st.text(NAME_CHARS, min_size=1, max_size=30))

channel_names = st.one_of(
    valid_names,
    valid_names.map(lambda n: n + "\n"),  # a trailing newline is not part of the grammar
    valid_names.map(lambda n: n + "\r\n"),
    valid_names.map(lambda n: "\n" + n),
    st.builds(lambda prefix, n: prefix + "a" * n, st.sampled_from(["", "private-", "presence-"]),
              st.sampled_from([160, 163, 164, 182, 190, 191, 192, 199, 200, 201, 1000])),
    st.text(max_size=20),
    st.text(st.sampled_from(NAME_CHARS + " #/\\\"'\x00\t\u00e9\u200b\uff0e"), min_size=0, max_size=20),
    st.sampled_from(["", "#server-to-user-", "#", "private-", "presence-", "..", "a b", "a/b", "\u0430bc",
                     "#server-to-user-#server-to-user-x", "private-encrypted-"]),
)

event_names = st.one_of(
    st.sampled_from(["pusher:subscribe", "pusher:unsubscribe", "pusher:ping", "pusher:pong", "pusher:signin",
                     "tabcast:tabs", "pusher:connection_established", "pusher_internal:subscription_succeeded",
                     "pusher:error", "client-", "client-x", "", "pusher:", "pusher:subscribe\n"]),
    st.text(max_size=20).map(lambda t: "client-" + t),
    st.text(max_size=20).map(lambda t: "pusher:" + t),
    st.just("client-" + "e" * 200), st.just("client-" + "e" * 193), st.just("client-" + "e" * 194),
    st.text(max_size=20),
)


@dataclass(frozen=True)
class Signed:
    """A placeholder for an auth token the test signs once it knows the socket id.

    ``channel``/``channel_data`` for a subscription (``channel_data`` exactly as sent), or
    ``user_data`` for a signin."""

    channel: str | None = None
    channel_data: str | None = None
    user_data: str | None = None


auth_values = st.one_of(
    st.none(), st.text(max_size=30), st.integers(), st.just(""),
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "KEY:" + h),
    st.text(max_size=10).map(lambda t: "KEY:" + t), st.just("KEY:" + "f" * 100000),
)


@st.composite
def channel_data_values(draw):
    user_id = draw(st.one_of(st.text(max_size=12), st.integers(-10, 10 ** 6), st.just("u" * 128), st.just("u" * 129),
                             st.none(), st.booleans(), json_values))
    info = draw(st.one_of(st.none(), json_values, st.just({"name": "x" * 990}), st.just({"name": "x" * 2000}),
                          st.just("y" * 1030)))
    body = {}
    if draw(st.integers(0, 5)):
        body["user_id"] = user_id
    if info is not None:
        body["user_info"] = info
    shape = draw(st.sampled_from(["string", "string", "string", "object", "junk", "empty", "null", "absent"]))
    if shape == "string":
        return json.dumps(body)
    if shape == "object":
        return body
    if shape == "junk":
        return draw(st.text(max_size=20))
    if shape == "empty":
        return ""
    if shape == "null":
        return None
    return "ABSENT"


@st.composite
def subscribe_data(draw):
    channel = draw(channel_names)
    data = {"channel": channel}
    channel_data = draw(channel_data_values())
    if channel_data != "ABSENT":
        data["channel_data"] = channel_data
    how = draw(st.sampled_from(["signed", "signed", "signed", "random", "absent"]))
    if how == "signed" and (channel_data is None or channel_data == "ABSENT" or isinstance(channel_data, str)):
        data["auth"] = Signed(channel=channel, channel_data=None if channel_data == "ABSENT" else channel_data)
    elif how != "absent":
        data["auth"] = draw(auth_values)
    return data


@st.composite
def signin_data(draw):
    user_id = draw(st.one_of(st.text(NAME_CHARS, min_size=1, max_size=12), st.integers(0, 10 ** 9), st.text(max_size=8),
                             st.just("a" * 201), st.just("bad id"), st.just("x\n"), st.none()))
    user_data = draw(st.one_of(st.just(json.dumps({"id": user_id, "user_info": {"n": 1}})), st.text(max_size=20),
                               json_values.map(json.dumps)))
    data = {"user_data": user_data}
    if draw(st.sampled_from([True, True, False])):
        data["auth"] = Signed(user_data=user_data)
    else:
        data["auth"] = draw(auth_values)
    return draw(st.one_of(st.just(data), st.just({"auth": data["auth"]}), json_values))


@st.composite
def pusher_frames(draw, subscribed: tuple = ()):
    """One client frame as a Python object (with Signed placeholders), or raw text."""
    shape = draw(st.integers(0, 19))
    if shape == 0:
        return draw(st.text(max_size=50))  # raw text, usually not JSON
    if shape == 1:
        return draw(deep_json)
    if shape == 2:
        return json.dumps(draw(json_values))  # any JSON, usually not an envelope
    event = draw(event_names)
    if shape < 9:
        event = "pusher:subscribe"
        data = draw(st.one_of(subscribe_data(), subscribe_data(), subscribe_data(), json_values))
    elif shape == 9:
        event = "pusher:signin"
        data = draw(signin_data())
    elif shape == 10:
        event = "pusher:unsubscribe"
        data = draw(st.one_of(st.builds(lambda c: {"channel": c}, channel_names), json_values))
    elif shape == 11:
        event = "tabcast:tabs"
        data = draw(st.one_of(st.builds(lambda t: {"tabs": t}, st.one_of(st.integers(-5, 1005), json_values)),
                              json_values))
    elif shape < 15:
        event = draw(st.one_of(st.text(max_size=12).map(lambda t: "client-" + t), st.just("client-" + "e" * 194)))
        data = draw(st.one_of(json_values, st.just("d" * 10200), st.just("d" * 10300), st.just({"d": "x" * 20000})))
    else:
        data = draw(json_values)
    frame = {"event": event}
    if draw(st.booleans()):
        frame["channel"] = draw(st.one_of(channel_names, json_values) if shape >= 15 else
                                st.one_of(channel_names, st.sampled_from(subscribed or ("private-x",))))
    if draw(st.integers(0, 9)) > 0:
        frame["data"] = data
    if draw(st.integers(0, 3)) == 0 and isinstance(data, (dict, list)):
        frame["data"] = DoubleEncoded(data)  # a JSON string, as some clients send system events
    if draw(st.integers(0, 9)) == 0:
        frame["user_id"] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        frame = {**frame, **draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3))}
    if draw(st.integers(0, 9)) == 0:
        frame = dict(reversed(list(frame.items())))
    return frame


@dataclass(frozen=True)
class DoubleEncoded:
    value: object


def resolve(obj, model):
    """Replace Signed placeholders with real tokens for this connection (model knows socket id, key, secret)."""
    if isinstance(obj, Signed):
        if obj.user_data is not None:
            return model.token(f"{model.socket_id}::user::{obj.user_data}")
        message = f"{model.socket_id}:{obj.channel}" + (f":{obj.channel_data}" if obj.channel_data else "")
        return model.token(message)
    if isinstance(obj, DoubleEncoded):
        return json.dumps(resolve(obj.value, model))
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else str(k)): resolve(v, model) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve(v, model) for v in obj]
    if isinstance(obj, str) and obj.startswith("KEY:"):
        return model.key + obj[3:]
    return obj


def encode(obj) -> str:
    """The text a client sends (json.dumps keeps NaN/Infinity/huge ints: valid Python JSON, odd for others)."""
    if isinstance(obj, str):
        return obj
    return json.dumps(obj)


# --- WebSocket frames --------------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    mask: bool = True


CLOSE_CODES = [0, 1, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
               1014, 1015, 1016, 2000, 2999, 3000, 3999, 4000, 4001, 4999, 5000, 65535]

APP_TEXTS = st.one_of(
    st.just('{"event":"pusher:ping","data":{}}'),
    st.just('{"event":"pusher:subscribe","data":{"channel":"frames-ok"}}'),
    st.just('{"event":"no-such-event"}'),
    st.text(max_size=40),
).map(lambda t: t.encode())

text_payloads = st.one_of(
    APP_TEXTS,
    st.binary(max_size=60),  # mostly invalid UTF-8
    st.just(b'{"event":"\xff"}'), st.just(b"\xed\xa0\x80"), st.just(b"\xc0\xaf"), st.just(b"\xf4\x90\x80\x80"),
)

reasons = st.one_of(st.text(max_size=20).map(lambda t: t.encode()), st.binary(max_size=10),
                    st.just(b"x" * 123), st.just(b"x" * 124))


@st.composite
def close_payloads(draw):
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return b""
    if shape == 1:
        return draw(st.binary(min_size=1, max_size=1))
    code = draw(st.sampled_from(CLOSE_CODES))
    return code.to_bytes(2, "big") + draw(reasons)


@st.composite
def single_frames(draw):
    opcode = draw(st.sampled_from([OP_TEXT, OP_TEXT, OP_BINARY, OP_CONT, OP_CLOSE, OP_PING, OP_PING, OP_PONG,
                                   3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]))
    if opcode == OP_TEXT:
        payload = draw(text_payloads)
    elif opcode == OP_CLOSE:
        payload = draw(close_payloads())
    elif opcode in (OP_PING, OP_PONG):
        payload = draw(st.one_of(st.binary(max_size=20), st.sampled_from([b"x" * 125, b"x" * 126, b"x" * 300])))
    else:
        payload = draw(st.binary(max_size=30))
    fin = draw(st.sampled_from([True, True, True, True, False]))
    rsv = draw(st.sampled_from([0] * 12 + [1, 2, 4, 7]))
    mask = draw(st.sampled_from([True] * 12 + [False]))
    return [Frame(opcode, payload, fin, rsv, mask)]


@st.composite
def fragmented_messages(draw):
    """A text or binary message split over several frames, maybe with control frames between."""
    opcode = draw(st.sampled_from([OP_TEXT, OP_TEXT, OP_BINARY]))
    payload = draw(text_payloads) if opcode == OP_TEXT else draw(st.binary(max_size=40))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
    pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
    frames = []
    for i, piece in enumerate(pieces):
        frames.append(Frame(opcode if i == 0 else OP_CONT, piece, fin=i == len(pieces) - 1))
        if i < len(pieces) - 1 and draw(st.integers(0, 3)) == 0:
            frames.append(Frame(OP_PING, draw(st.binary(max_size=8))))
    if draw(st.integers(0, 5)) == 0:
        frames = frames[:-1]  # never finished: the next data frame breaks the rules
    return frames


frame_scripts = st.lists(st.one_of(single_frames(), single_frames(), fragmented_messages()), min_size=1,
                         max_size=5).map(lambda units: [f for unit in units for f in unit])
