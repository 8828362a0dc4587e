"""Fuzz: random Pusher-protocol frames (events, data shapes, channel names, auth strings, huge
numbers, deep nesting) over a real socket each get exactly the documented answer.

Each example opens a socket, sends up to 6 frames and after each one a probe (a subscribe to a
fresh channel, whose ``subscription_succeeded`` marks the end of that frame's answers), so every
frame's answer is checked on its own against ``oracle.PusherModel``. Then a separate healthy
subscriber must still receive a marker publish (``Liveness``).
"""

import itertools
import json

from hypothesis import example, given
from hypothesis import strategies as st

from .conftest import budget
from .oracle import PusherModel, first_match
from .strategies import encode, pusher_frames, resolve
from .wire import OP_CLOSE, OP_TEXT, Closed, WireSocket, close_payload

_probes = itertools.count()


def open_socket(server) -> tuple[WireSocket, str]:
    sock = WireSocket.connect(server.port, f"/app/{server.app['key']}?protocol=7")
    opcode, payload, _ = sock.recv_frame()
    frame = json.loads(payload)
    assert frame["event"] == "pusher:connection_established", frame
    return sock, json.loads(frame["data"])["socket_id"]


def answers_until(sock: WireSocket, probe: str) -> tuple[list[dict], int | None]:
    """The frames the server sent before the probe's answer; (frames, close code) if it closed."""
    frames = []
    while True:
        opcode, payload, _ = sock.recv_frame(timeout=10)
        if opcode == OP_CLOSE:
            code, _ = close_payload(payload)
            try:
                rest = sock.answer_close(payload)
            except TimeoutError:
                raise AssertionError(f"the server sent close {code} but kept the TCP connection open") from None
            assert not rest, f"the server sent {rest[:200]!r} after its close frame"
            return frames, code
        assert opcode == OP_TEXT, f"unexpected frame opcode {opcode}: {payload[:200]!r}"
        frame = json.loads(payload)
        if frame.get("event") == "pusher_internal:subscription_succeeded" and frame.get("channel") == probe:
            return frames, None
        if frame.get("event") == "pusher_internal:subscription_count":
            continue  # an optional app setting; not an answer to the frame
        frames.append(frame)


def exchange(sock: WireSocket, model: PusherModel, frame) -> None:
    """Send one fuzz frame, check its answer against the model, apply it."""
    text = encode(resolve(frame, model))
    outcomes = model.answer(text)
    sock.send_text(text)
    probe = f"zz-probe.{next(_probes)}"
    try:
        sock.send_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": probe}}))
    except OSError:
        pass  # the frame closed the connection; its answer is still in our buffer
    try:
        frames, closed = answers_until(sock, probe)
    except (Closed, TimeoutError) as exc:
        raise AssertionError(f"no answer to {text[:300]!r}: {exc!r}") from None
    outcome = first_match(outcomes, frames, closed)
    assert outcome is not None, (
        f"frame {text[:500]!r}\n got: {[json.dumps(f)[:300] for f in frames]} then "
        f"{'close ' + str(closed) if closed else 'nothing'}\n expected one of: {[str(o) for o in outcomes]}")
    if outcome.apply:
        outcome.apply()
    if closed is None:
        sock.send_text(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": probe}}))
    else:
        model.closed = True


@budget(250)
@given(frames=st.lists(pusher_frames(), min_size=1, max_size=6))
# A signature that is not ASCII: a TypeError in hmac.compare_digest (4303 + a logged traceback)
# until signatures.matches compared bytes.
@example(frames=[{"event": "pusher:subscribe", "data": {"channel": "private-x", "auth": "KEY:\u00e9"}}])
@example(frames=[{"event": "pusher:signin", "data": {"user_data": '{"id":"1"}', "auth": "KEY:\u00e9"}}])
@example(frames=[{"event": "pusher:subscribe", "data": {"channel": "trailing\n"}}])  # "$" matched before "\n"
def test_pusher_frames_get_their_documented_answers(fuzz_server, liveness, frames):
    liveness.begin()
    sock, socket_id = open_socket(fuzz_server)
    app = fuzz_server.app
    model = PusherModel(app["key"], app["secret"], socket_id, app["max_message_bytes"])
    try:
        for frame in frames:
            exchange(sock, model, frame)
            if model.closed:
                break
    finally:
        sock.close()
    liveness.check()


@budget(60)
@given(frames=st.lists(pusher_frames(), min_size=1, max_size=4),
       subscriptions=st.lists(st.sampled_from(["private-fz", "presence-fz", "private-encrypted-fz",
                                               "presence-cache-fz"]), min_size=1, max_size=3, unique=True))
def test_frames_on_a_subscribed_socket(fuzz_server, liveness, frames, subscriptions):
    """The same, on a socket already subscribed (with valid signatures) to private and presence
    channels, so client events and re-subscribes reach the deeper paths."""
    liveness.begin()
    sock, socket_id = open_socket(fuzz_server)
    app = fuzz_server.app
    model = PusherModel(app["key"], app["secret"], socket_id, app["max_message_bytes"])
    try:
        for channel in subscriptions:
            channel_data = json.dumps({"user_id": f"u{socket_id}"}) if channel.startswith("presence-") else None
            message = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data else "")
            data = {"channel": channel, "auth": model.token(message)}
            if channel_data:
                data["channel_data"] = channel_data
            exchange(sock, model, {"event": "pusher:subscribe", "data": data})
            assert channel in model.channels
        for frame in frames:
            if isinstance(frame, dict) and str(frame.get("event", "")).startswith("client-") \
                    and "channel" not in frame:
                frame = {**frame, "channel": subscriptions[0]}
            exchange(sock, model, frame)
            if model.closed:
                break
    finally:
        sock.close()
    liveness.check()
