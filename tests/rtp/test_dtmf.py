from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.dtmf import DtmfError, DtmfReceiver, DtmfSender, TelephoneEvent
from callbridge.rtp.packet import RtpPacket

# Captured: key 5, end bit, volume 10, duration 1280 (160 ms).
END_OF_FIVE = bytes.fromhex("058a0500")


def test_parse_captured_event() -> None:
    event = TelephoneEvent.parse(END_OF_FIVE)
    assert (event.digit, event.end, event.volume, event.duration) == ("5", True, 10, 1280)
    assert event.serialize() == END_OF_FIVE


@given(st.binary(max_size=16))
def test_parse_returns_an_event_or_raises_dtmf_error(data: bytes) -> None:
    with contextlib.suppress(DtmfError):
        TelephoneEvent.parse(data)


def _key_run(digits: str) -> list[list[RtpPacket]]:
    sender = DtmfSender(ssrc=0x1234)
    runs, seq, ts = [], 1000, 50_000
    for digit in digits:
        run = sender.packets(digit, ts, seq)
        runs.append(run)
        seq += len(run) + 5
        ts += 2400
    return runs


def test_three_end_packets_give_one_key() -> None:
    receiver = DtmfReceiver()
    run = _key_run("8")[0]
    assert sum(1 for p in run if p.payload[1] & 0x80) == 3
    keys = [k.digit for p in run if (k := receiver.receive(p))]
    assert keys == ["8"]


def test_a_lone_end_packet_still_counts() -> None:
    receiver = DtmfReceiver()
    run = _key_run("#")[0]
    pressed = receiver.receive(run[-1])
    assert pressed is not None and pressed.digit == "#"


def test_same_key_twice_is_two_presses() -> None:
    receiver = DtmfReceiver()
    runs = _key_run("77")
    keys = [k.digit for run in runs for p in run if (k := receiver.receive(p))]
    assert keys == ["7", "7"]


@given(st.text(alphabet="0123456789*#", min_size=1, max_size=12), st.randoms())
def test_any_duplication_and_local_reordering_decodes_the_string(
    digits: str, rnd: random.Random
) -> None:
    receiver = DtmfReceiver()
    stream: list[RtpPacket] = []
    for run in _key_run(digits):
        packets = [p for p in run for _ in range(rnd.randint(1, 3))]
        rnd.shuffle(packets)  # reordered within the key's run
        stream.extend(packets)
    keys = "".join(k.digit for p in stream if (k := receiver.receive(p)))
    assert keys == digits


def test_unknown_keys_are_rejected_by_the_sender() -> None:
    with pytest.raises(ValueError):
        DtmfSender(1).packets("x", 0, 0)
