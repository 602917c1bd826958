from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.jitter import JitterBuffer, conceal
from callbridge.rtp.packet import RtpPacket


def pkt(seq: int, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(0, seq & 0xFFFF, seq * 160, ssrc, bytes([seq & 0xFF]) * 160)


def drain(jb: JitterBuffer, n: int) -> list[int | None]:
    out = []
    for _ in range(n):
        payload = jb.pop()
        out.append(None if payload is None else payload[0])
    return out


def test_waits_for_target_then_plays_in_order() -> None:
    jb = JitterBuffer(target=2)
    jb.put(pkt(10))
    assert jb.pop() is None
    jb.put(pkt(12))
    jb.put(pkt(11))
    assert drain(jb, 3) == [10, 11, 12]


def test_loss_is_reported_and_late_packets_dropped() -> None:
    jb = JitterBuffer(target=1)
    for seq in (1, 2, 4, 5):
        jb.put(pkt(seq))
    assert drain(jb, 4) == [1, 2, None, 4]
    jb.put(pkt(3))  # too late now
    assert jb.stats.late == 1
    assert drain(jb, 1) == [5]
    assert jb.stats.lost == 1


def test_wraps_around() -> None:
    jb = JitterBuffer(target=1)
    for seq in (65534, 65535, 65536, 65537):
        jb.put(pkt(seq))
    assert drain(jb, 4) == [0xFE, 0xFF, 0x00, 0x01]


def test_a_burst_cannot_grow_it_past_capacity() -> None:
    jb = JitterBuffer(target=2, capacity=10)
    for seq in range(1000):
        jb.put(pkt(seq))
        assert len(jb) <= 10
    assert jb.stats.overflow == 990
    assert drain(jb, 1) == [990 & 0xFF]


def test_new_source_resets() -> None:
    jb = JitterBuffer(target=1)
    jb.put(pkt(5, ssrc=1))
    jb.put(pkt(40000, ssrc=2))
    assert jb.stats.resets == 1
    assert drain(jb, 1) == [40000 & 0xFF]


def test_duplicates_counted() -> None:
    jb = JitterBuffer(target=1)
    jb.put(pkt(1))
    jb.put(pkt(1))
    assert jb.stats.duplicates == 1


@given(st.lists(st.integers(0, 70000), max_size=200))
def test_never_raises_and_stays_bounded(seqs: list[int]) -> None:
    jb = JitterBuffer(target=2, capacity=8)
    for seq in seqs:
        jb.put(pkt(seq))
        assert len(jb) <= 8
        jb.pop()


def test_conceal_fades_then_stops() -> None:
    last = np.full(160, 1000, np.int16)
    first = conceal(last, 1)
    assert first is not None and first[0] == 500
    assert conceal(last, 4) is None
    assert conceal(None, 1) is None
