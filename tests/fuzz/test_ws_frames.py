"""Fuzz: WebSocket frames of every kind (text, binary, continuation, ping/pong/close with odd
payloads, reserved opcodes and bits, unmasked frames, fragments, invalid UTF-8, oversized)
each get the answer RFC 6455 and the Pusher protocol document, and the server stays healthy.

The RFC's answers: a protocol violation closes with 1002, text that is not UTF-8 with 1007, a
message over the size limit (1 MiB, ``server.py``) with 1009; a ping is answered with a pong
carrying its payload; a valid close is echoed and the TCP connection closed. A complete
message goes to the Pusher layer (binary: ``pusher:error`` 4300; text: ``oracle.PusherModel``).
Control-frame answers (pong, close) and the Pusher layer's answers are separate ordered
streams: the server answers pings from its protocol layer, ahead of queued messages.
"""

import json
import struct

from hypothesis import given
from hypothesis import strategies as st

from .conftest import budget
from .oracle import PusherModel
from .strategies import Frame, frame_scripts
from .test_ws_pusher import open_socket
from .wire import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Closed, encode_frame

WS_MAX_SIZE = 1024 * 1024  # ws_max_size in service/realtime/server.py
CONTROL = (OP_CLOSE, OP_PING, OP_PONG)
VALID_CLOSE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


def utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class RfcModel:
    """What the server answers to a sequence of frames: control answers, Pusher answers, close."""

    def __init__(self, pusher: PusherModel):
        self.pusher = pusher
        self.fragment: tuple[int, bytearray] | None = None
        self.control: list[tuple[int, bytes]] = []  # (opcode, payload) the server sends back
        self.messages: list[list] = []  # per complete message: its acceptable Pusher answers
        self.close: int | str | None = None  # close code the server sends ("empty": a close without code)
        self.echo: bytes | None = None  # for a client close: the payload echoed

    def feed(self, frame: Frame) -> bool:
        """Account for one frame; False once the connection is closing (later frames are not sent)."""
        if frame.opcode not in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
            return self._fail(1002)
        if not frame.mask:
            return self._fail(1002)
        if frame.opcode not in CONTROL:
            pending = len(self.fragment[1]) if self.fragment and frame.opcode == OP_CONT else 0
            if pending + len(frame.payload) > WS_MAX_SIZE:
                return self._fail(1009)
        if frame.rsv:
            return self._fail(1002)
        if frame.opcode in CONTROL and (len(frame.payload) > 125 or not frame.fin):
            return self._fail(1002)
        if frame.opcode == OP_CONT:
            if self.fragment is None:
                return self._fail(1002)
            self.fragment[1].extend(frame.payload)
            if frame.fin:
                opcode, data = self.fragment
                self.fragment = None
                return self._message(opcode, bytes(data))
            return True
        if frame.opcode in (OP_TEXT, OP_BINARY):
            if self.fragment is not None:
                return self._fail(1002)
            if frame.fin:
                return self._message(frame.opcode, frame.payload)
            self.fragment = (frame.opcode, bytearray(frame.payload))
            return True
        if frame.opcode == OP_PING:
            self.control.append((OP_PONG, frame.payload))
            return True
        if frame.opcode == OP_PONG:
            return True
        # OP_CLOSE
        payload = frame.payload
        if len(payload) == 1:
            return self._fail(1002)
        if len(payload) >= 2:
            if utf8(payload[2:]) is None:
                return self._fail(1007)
            code = struct.unpack("!H", payload[:2])[0]
            if not (code in VALID_CLOSE or 3000 <= code < 5000):
                return self._fail(1002)
        self.close, self.echo = (struct.unpack("!H", payload[:2])[0] if payload else "empty"), payload
        return False

    def _fail(self, code: int) -> bool:
        self.close, self.echo = code, None
        return False

    def _message(self, opcode: int, data: bytes) -> bool:
        if opcode == OP_BINARY:
            self.messages.append([[("pusher:error", 4300)]])
            return True
        text = utf8(data)
        if text is None:
            return self._fail(1007)
        outcomes = self.pusher.answer(text)
        self.messages.append([[(e.event, e.code) for e in o.frames] for o in outcomes])
        for outcome in outcomes[:1]:
            if outcome.apply:
                outcome.apply()
        return True


def summarize(frame: dict) -> tuple:
    data = frame.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            pass
    return frame.get("event"), data.get("code") if isinstance(data, dict) and frame.get("event") == "pusher:error" \
        else None


def matches(expected: list[list], received: list[tuple], prefix: bool) -> bool:
    """Does ``received`` equal one choice per message, concatenated (or a prefix of one, if cut short)?"""
    if not expected:
        return not received
    for choice in expected[0]:
        # A Pusher answer only states event and, for errors, the code.
        choice = [(event, code if event == "pusher:error" else None) for event, code in choice]
        n = len(choice)
        if received[:n] == choice and matches(expected[1:], received[n:], prefix):
            return True
        if prefix and len(received) < n and received == choice[:len(received)]:
            return True
    return prefix and not received


PROBE_PING = b"\x00fuzz-probe\xff"
PROBE_TEXT = b'{"event":"pusher:subscribe","data":{"channel":"zz-frames-probe"}}'


@budget(250)
@given(script=frame_scripts)
def test_frames_get_rfc_and_pusher_answers(fuzz_server, liveness, script):
    liveness.begin()
    sock, socket_id = open_socket(fuzz_server)
    app = fuzz_server.app
    model = RfcModel(PusherModel(app["key"], app["secret"], socket_id, app["max_message_bytes"]))
    sent = []
    for frame in script:
        sent.append(frame)
        if not model.feed(frame):
            break
    if model.close is None and model.fragment is not None:
        sent.append(Frame(OP_CONT, b"", fin=True))  # finish the message so the probe is legal
        model.feed(sent[-1])
    if model.close is None:
        # Probes: the answers to these two end the control and the Pusher streams.
        sent += [Frame(OP_TEXT, PROBE_TEXT), Frame(OP_PING, PROBE_PING)]
        model.feed(sent[-2])
        model.feed(sent[-1])
    wire = b"".join(encode_frame(f.opcode, f.payload, fin=f.fin, rsv=f.rsv, mask=f.mask) for f in sent)
    control, app_frames, closed, echo, after_close = [], [], None, None, b""
    probe_answered = False
    try:
        sock.send_raw(wire)
        while not (probe_answered and (OP_PONG, PROBE_PING) in control):
            opcode, payload, fin = sock.recv_frame(timeout=10)
            assert fin, "the server fragmented a frame"
            if opcode == OP_TEXT:
                frame = json.loads(payload)
                app_frames.append(summarize(frame))
                probe_answered |= frame.get("channel") == "zz-frames-probe"
            elif opcode == OP_CLOSE:
                closed = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else "empty"
                echo = payload
                after_close = sock.wait_eof(timeout=10)
                break
            else:
                control.append((opcode, payload))
    except (Closed, TimeoutError) as exc:
        raise AssertionError(f"script {sent}: got control {control}, pusher {app_frames}, "
                             f"then {exc!r}; expected {model.control}, {model.messages}, close {model.close}") from None
    finally:
        sock.close()
    description = (f"script {sent}\n got control {control}, pusher {app_frames}, close {closed}\n"
                   f" expected control {model.control}, pusher {model.messages}, close {model.close}")
    assert closed == model.close, description
    assert not after_close, f"the server sent {after_close[:200]!r} after its close frame\n{description}"
    if model.close is not None and model.echo is not None:
        assert echo == model.echo, description  # a client's close is echoed as the RFC says
    # Pongs answer pings in order; a closing connection may stop answering early.
    assert control == model.control[:len(control)] if model.close else control == model.control, description
    assert matches(model.messages, app_frames, prefix=model.close is not None), description
    liveness.check()


@budget(12)
@given(size=st.sampled_from([WS_MAX_SIZE - 64, WS_MAX_SIZE, WS_MAX_SIZE + 1, 4 * WS_MAX_SIZE]),
       fragments=st.integers(1, 3), opcode=st.sampled_from([OP_TEXT, OP_BINARY]))
def test_oversized_messages(fuzz_server, liveness, size, fragments, opcode):
    """Messages at and over the 1 MiB frame limit, whole or in fragments: refused with 1009 (or,
    under it, answered by the Pusher layer as too large), never buffered without bound."""
    liveness.begin()
    sock, socket_id = open_socket(fuzz_server)
    app = fuzz_server.app
    model = RfcModel(PusherModel(app["key"], app["secret"], socket_id, app["max_message_bytes"]))
    payload = b"x" * size
    step = -(-size // fragments)
    pieces = [payload[i:i + step] for i in range(0, size, step)]
    frames = [Frame(opcode if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)]
    sent = []
    for frame in frames:
        sent.append(frame)
        if not model.feed(frame):
            break
    try:
        for frame in sent:
            sock.send_raw(encode_frame(frame.opcode, frame.payload, fin=frame.fin))
        if model.close is None:
            sock.send_raw(encode_frame(OP_TEXT, b'{"event":"pusher:ping","data":{}}'))
    except OSError:
        pass  # the server may close before taking all of an oversized frame
    got = []
    closed = None
    try:
        while True:
            opcode_in, data, _ = sock.recv_frame(timeout=10)
            if opcode_in == OP_CLOSE:
                closed = struct.unpack("!H", data[:2])[0]
                break
            got.append(summarize(json.loads(data)))
            if got[-1] == ("pusher:pong", None):
                break
    except Closed:
        closed = "reset"
    finally:
        sock.close()
    if model.close is not None:
        assert closed in (model.close, "reset"), (size, fragments, got, closed)
    else:
        assert closed is None and got[0] == ((model.messages[0][0][0][0], model.messages[0][0][0][1])), (got, model.messages)
    liveness.check()
