from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.dtmf import (
    DigitPressed,
    DtmfError,
    DtmfReceiver,
    DtmfSender,
    TelephoneEvent,
    digit_event,
)
from callbridge.rtp.packet import RtpPacket

# Captured: key 5, end bit, volume 10, duration 1280 (160 ms).
END_OF_FIVE = bytes.fromhex("058a0500")
KEYS = "0123456789*#ABCD"


def test_parse_captured_event() -> None:
    event = TelephoneEvent.parse(END_OF_FIVE)
    assert (event.digit, event.end, event.volume, event.duration) == ("5", True, 10, 1280)
    assert event.serialize() == END_OF_FIVE


def test_reserved_bit_is_ignored_and_trailing_blocks_too() -> None:
    event = TelephoneEvent.parse(bytes.fromhex("0b4a0190") + b"\x00" * 4)
    assert (event.digit, event.end, event.volume, event.duration) == ("#", False, 10, 400)


def test_event_codes_map_to_keys() -> None:
    for code, key in enumerate(KEYS):
        assert TelephoneEvent(code, False, 0, 0).digit == key
        assert digit_event(key) == code
    assert digit_event("a") == 12
    assert TelephoneEvent(16, False, 0, 0).digit is None  # flash


@pytest.mark.parametrize("payload", [b"", b"\x05", b"\x05\x8a\x05"])
def test_short_payloads_are_rejected(payload: bytes) -> None:
    with pytest.raises(DtmfError, match=f"{len(payload)} bytes is shorter"):
        TelephoneEvent.parse(payload)


@given(st.binary(max_size=16))
def test_parse_returns_an_event_or_raises_dtmf_error(data: bytes) -> None:
    with contextlib.suppress(DtmfError):
        event = TelephoneEvent.parse(data)
        assert TelephoneEvent.parse(event.serialize()) == event


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF))
def test_serialize_parse_round_trip(code: int, end: bool, volume: int, duration: int) -> None:
    event = TelephoneEvent(code, end, volume, duration)
    assert TelephoneEvent.parse(event.serialize()) == event


def test_serialize_refuses_out_of_range_fields() -> None:
    for event in (
        TelephoneEvent(256, False, 0, 0),
        TelephoneEvent(1, False, 64, 0),
        TelephoneEvent(1, False, 0, 0x10000),
    ):
        with pytest.raises(ValueError):
            event.serialize()


def test_sender_run_looks_like_a_phone() -> None:
    run = DtmfSender(ssrc=0x1234, payload_type=96).schedule("8", 50_000, 65534, duration_ms=160)
    events = [TelephoneEvent.parse(item.packet.payload) for item in run]
    assert [e.duration for e in events] == [160, 560, 960, 1280, 1280, 1280]
    assert [e.end for e in events] == [False, False, False, True, True, True]
    assert [item.packet.marker for item in run] == [True, False, False, False, False, False]
    assert [item.packet.sequence_number for item in run] == [65534, 65535, 0, 1, 2, 3]
    assert {item.packet.timestamp for item in run} == {50_000}
    assert {(p.packet.ssrc, p.packet.payload_type) for p in run} == {(0x1234, 96)}
    # Updates every 50 ms (400 samples) while held, end packets 20 ms apart.
    assert [item.offset for item in run] == [160, 560, 960, 1280, 1440, 1600]
    assert {e.event for e in events} == {8}


def test_sender_short_key_and_limits() -> None:
    sender = DtmfSender(ssrc=1)
    run = sender.packets("#", 0, 0, duration_ms=20)
    assert len(run) == 3 and run[0].marker
    with pytest.raises(ValueError):
        sender.packets("x", 0, 0)
    with pytest.raises(ValueError):
        sender.packets("1", 0, 0, duration_ms=10_000)


def _key_runs(digits: str, ssrc: int = 0x1234, ts: int = 50_000) -> list[list[RtpPacket]]:
    sender = DtmfSender(ssrc=ssrc)
    runs, seq = [], 1000
    for digit in digits:
        run = sender.packets(digit, ts, seq)
        runs.append(run)
        seq += len(run) + 5  # audio packets in between
        ts = (ts + 2400) & 0xFFFFFFFF
    return runs


def _decode(receiver: DtmfReceiver, packets: list[RtpPacket]) -> str:
    return "".join(k.digit for p in packets if (k := receiver.receive(p)))


def test_reported_on_the_first_packet() -> None:
    receiver = DtmfReceiver()
    run = _key_runs("8")[0]
    assert receiver.receive(run[0]) == DigitPressed("8", 50_000, 160)
    assert all(receiver.receive(p) is None for p in run[1:])


def test_three_end_packets_give_one_key() -> None:
    run = _key_runs("8")[0]
    assert sum(1 for p in run if p.payload[1] & 0x80) == 3
    assert _decode(DtmfReceiver(), run) == "8"


def test_a_lone_end_packet_still_counts() -> None:
    receiver = DtmfReceiver()
    run = _key_runs("#")[0]
    pressed = receiver.receive(run[-1])
    assert pressed is not None and pressed.digit == "#" and pressed.duration == 960
    assert receiver.receive(run[-2]) is None


def test_same_key_twice_is_two_presses() -> None:
    assert _decode(DtmfReceiver(), [p for run in _key_runs("77") for p in run]) == "77"


def test_timestamps_across_the_wrap() -> None:
    runs = _key_runs("123", ts=0xFFFFF000)
    assert _decode(DtmfReceiver(), [p for run in runs for p in run]) == "123"


def test_a_new_ssrc_starts_afresh() -> None:
    receiver = DtmfReceiver()
    first = _key_runs("1", ssrc=1, ts=9000)[0]
    # Same timestamp by chance on the new source: still a new key.
    second = _key_runs("1", ssrc=2, ts=9000)[0]
    assert _decode(receiver, first + second) == "11"


def test_new_source_with_an_older_timestamp_is_heard() -> None:
    receiver = DtmfReceiver()
    assert _decode(receiver, _key_runs("12", ssrc=1, ts=2_000_000_000)[0]) == "1"
    assert _decode(receiver, [p for run in _key_runs("34", ssrc=2, ts=10) for p in run]) == "34"


def test_non_dtmf_events_and_garbage_are_ignored() -> None:
    receiver = DtmfReceiver()
    flash = RtpPacket(101, 1, 100, 7, TelephoneEvent(16, False, 10, 160).serialize())
    short = RtpPacket(101, 2, 200, 7, b"\x01")
    assert receiver.receive(flash) is None and receiver.receive(short) is None
    assert receiver.ignored == 2


def test_a_different_event_on_a_known_timestamp_is_a_new_key() -> None:
    # Broken senders reuse the timestamp; the key still counts.
    receiver = DtmfReceiver()
    one = RtpPacket(101, 1, 800, 7, TelephoneEvent(1, True, 10, 800).serialize())
    two = RtpPacket(101, 2, 800, 7, TelephoneEvent(2, False, 10, 160).serialize())
    assert _decode(receiver, [one, one, two, two]) == "12"


def test_long_key_segments_are_one_press() -> None:
    # RFC 4733 2.5.1.3: after 0xFFFF samples the key goes on in a new segment
    # whose timestamp is where the previous one saturated.
    receiver = DtmfReceiver()
    ts = 0xFFFF0000
    first = RtpPacket(101, 1, ts, 7, TelephoneEvent(5, False, 10, 0xFFFF).serialize())
    nxt = (ts + 0xFFFF) & 0xFFFFFFFF
    second = RtpPacket(101, 2, nxt, 7, TelephoneEvent(5, False, 10, 400).serialize())
    end = RtpPacket(101, 3, nxt, 7, TelephoneEvent(5, True, 10, 800).serialize())
    assert _decode(receiver, [first, second, end, end, end]) == "5"
    # After an end, a key on that timestamp would be a new press.
    again = (nxt + 0xFFFF) & 0xFFFFFFFF
    third = RtpPacket(101, 4, again, 7, TelephoneEvent(5, True, 10, 800).serialize())
    assert _decode(receiver, [third]) == "5"


@given(
    st.text(alphabet=KEYS, min_size=1, max_size=12),
    st.randoms(use_true_random=False),
    st.integers(0, 0xFFFFFFFF),
)
def test_any_duplication_loss_and_local_reordering_decodes_the_string(
    digits: str, rnd: random.Random, ts: int
) -> None:
    receiver = DtmfReceiver()
    stream: list[RtpPacket] = []
    for run in _key_runs(digits, ts=ts):
        ends = [p for p in run if p.payload[1] & 0x80]
        # Any loss that leaves at least one packet of the key...
        kept = [p for p in run if rnd.random() < 0.6] or [rnd.choice(ends)]
        # ...any duplication of what is left, the end packets included...
        packets = [p for p in kept for _ in range(rnd.randint(1, 4))]
        # ...and any reordering within the key's run.
        rnd.shuffle(packets)
        stream.extend(packets)
    assert _decode(receiver, stream) == digits


@given(st.text(alphabet=KEYS, min_size=1, max_size=20), st.lists(st.integers(1, 6), min_size=20))
def test_any_number_of_end_packets_decodes_the_string(digits: str, copies: list[int]) -> None:
    receiver = DtmfReceiver()
    stream: list[RtpPacket] = []
    for run, n in zip(_key_runs(digits), copies, strict=False):
        stream.extend(run[:-3])
        stream.extend([run[-1]] * n)
    assert _decode(receiver, stream) == digits
