from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.jitter import ArrivalJitter, JitterBuffer, conceal
from callbridge.rtp.packet import RtpPacket


def pkt(seq: int, ssrc: int = 1, ts: int | None = None) -> RtpPacket:
    """A frame whose payload names its (unwrapped) sequence number."""
    timestamp = (seq * 160 if ts is None else ts) & 0xFFFFFFFF
    return RtpPacket(0, seq & 0xFFFF, timestamp, ssrc, seq.to_bytes(4, "big", signed=True))


def frame_id(payload: bytes | None) -> int | None:
    return None if payload is None else int.from_bytes(payload, "big", signed=True)


def drain(jb: JitterBuffer, n: int) -> list[int | None]:
    return [frame_id(jb.get_frame()) for _ in range(n)]


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(target=0)
    with pytest.raises(ValueError):
        JitterBuffer(target=5, capacity=5)


def test_waits_for_target_then_plays_in_order() -> None:
    jb = JitterBuffer(target=2)
    assert jb.get_frame() is None
    jb.put(pkt(10))
    assert jb.get_frame() is None and not jb.playing
    jb.put(pkt(12))
    jb.put(pkt(11))
    assert drain(jb, 3) == [10, 11, 12]
    assert jb.stats.played == 3 and jb.stats.lost == 0


def test_starts_after_the_target_delay_even_if_the_next_packet_is_lost() -> None:
    jb = JitterBuffer(target=2)
    jb.put(pkt(10), now=1.000)
    assert jb.get_frame(now=1.020) is None
    assert frame_id(jb.get_frame(now=1.040)) == 10
    jb.put(pkt(12), now=1.045)
    assert jb.get_frame(now=1.060) is None  # 11 never came
    assert frame_id(jb.get_frame(now=1.080)) == 12
    assert jb.stats.lost == 1


def test_reordered_while_filling_plays_the_oldest_first() -> None:
    jb = JitterBuffer(target=3)
    for seq in (21, 20, 22):
        jb.put(pkt(seq))
    assert drain(jb, 3) == [20, 21, 22]


def test_loss_is_reported_and_late_packets_dropped() -> None:
    jb = JitterBuffer(target=1)
    for seq in (1, 2, 4, 5):
        jb.put(pkt(seq))
    assert drain(jb, 4) == [1, 2, None, 4]
    jb.put(pkt(3))  # its turn has passed
    assert jb.stats.late == 1
    assert drain(jb, 1) == [5]
    assert jb.stats.lost == 1


def test_wraps_around() -> None:
    jb = JitterBuffer(target=1)
    for seq in (65534, 65536, 65535, 65537):
        jb.put(pkt(seq))
    assert drain(jb, 4) == [65534, 65535, 65536, 65537]


def test_a_burst_cannot_grow_it_past_capacity() -> None:
    jb = JitterBuffer(target=2, capacity=10)
    for seq in range(1000):
        jb.put(pkt(seq))
        assert len(jb) <= 10
    assert jb.stats.overflow == 990
    assert drain(jb, 10) == list(range(990, 1000))


def test_a_packet_far_ahead_moves_the_window_without_holding_more() -> None:
    jb = JitterBuffer(target=1, capacity=10)
    for seq in range(5):
        jb.put(pkt(seq))
    assert drain(jb, 2) == [0, 1]
    jb.put(pkt(500))  # 2-4 are now outside the window
    assert len(jb) == 1
    assert drain(jb, 10)[-1] == 500
    assert jb.stats.overflow == 3


def test_duplicates_counted() -> None:
    jb = JitterBuffer(target=1)
    jb.put(pkt(1))
    jb.put(pkt(1))
    assert jb.stats.duplicates == 1
    assert drain(jb, 2) == [1, None]


def test_new_ssrc_resets_at_once() -> None:
    jb = JitterBuffer(target=1)
    jb.put(pkt(5, ssrc=1))
    jb.put(pkt(40000, ssrc=2))
    assert jb.stats.resets == 1
    assert drain(jb, 1) == [40000]


def test_sequence_jump_resets_once_confirmed() -> None:
    jb = JitterBuffer(target=1)
    for seq in range(100, 105):
        jb.put(pkt(seq))
    assert drain(jb, 2) == [100, 101]
    jb.put(pkt(30000))  # the sender restarted, same SSRC
    assert jb.stats.resets == 0
    jb.put(pkt(30001))
    assert jb.stats.resets == 1
    assert drain(jb, 2) == [30000, 30001]


def test_a_stray_packet_does_not_reset() -> None:
    jb = JitterBuffer(target=1)
    for seq in range(100, 103):
        jb.put(pkt(seq))
    jb.put(pkt(9000))
    jb.put(pkt(103))
    assert jb.stats.resets == 0 and jb.stats.strays == 1
    assert drain(jb, 4) == [100, 101, 102, 103]


def test_timestamp_jump_back_is_a_restart() -> None:
    jb = JitterBuffer(target=1)
    for seq in range(10, 14):
        jb.put(pkt(seq, ts=1_000_000 + seq * 160))
    assert drain(jb, 1) == [10]
    # Sequence numbers go on, the timestamp starts again: a new source.
    jb.put(pkt(14, ts=500))
    jb.put(pkt(15, ts=660))
    assert jb.stats.resets == 1
    assert drain(jb, 2) == [14, 15]


def test_silence_suppression_gap_is_not_a_restart() -> None:
    jb = JitterBuffer(target=1)
    jb.put(pkt(1, ts=160))
    assert drain(jb, 2) == [1, None]
    # 10 s of suppressed silence: the timestamp jumps, the sequence does not.
    jb.put(pkt(2, ts=160 + 80_000))
    jb.put(pkt(3, ts=320 + 80_000))
    assert drain(jb, 2) == [2, 3]
    assert jb.stats.resets == 0 and jb.stats.underruns == 1


def test_after_an_outage_it_resumes_at_the_target_delay() -> None:
    jb = JitterBuffer(target=2)
    for seq in range(3):
        jb.put(pkt(seq))
    assert drain(jb, 3) == [0, 1, 2]
    assert drain(jb, 5) == [None] * 5  # the network is down, packets 3-40 lost
    out = []
    for seq in range(41, 51):
        jb.put(pkt(seq))
        out.append(frame_id(jb.get_frame()))
    # One tick to refill, then every frame in turn: no lasting delay from the gap.
    assert out == [None, 41, 42, 43, 44, 45, 46, 47, 48, 49]
    assert len(jb) == 1


def test_a_frame_already_played_is_not_played_again_after_running_dry() -> None:
    jb = JitterBuffer(target=1)
    jb.put(pkt(1))
    jb.put(pkt(2))
    assert drain(jb, 3) == [1, 2, None]
    jb.put(pkt(2))  # a duplicate, late
    jb.put(pkt(3))
    assert drain(jb, 2) == [3, None]
    assert jb.stats.late == 1


def test_pop_is_get_frame_without_a_clock() -> None:
    jb = JitterBuffer(target=1)
    jb.put(pkt(7))
    assert frame_id(jb.pop()) == 7


@given(
    st.integers(0, 0xFFFF),
    st.lists(st.one_of(st.integers(0, 60), st.none()), max_size=300),
)
def test_plays_each_frame_at_most_once_in_order_and_stays_bounded(
    base: int, ops: list[int | None]
) -> None:
    jb = JitterBuffer(target=2, capacity=8)
    played: list[int] = []
    for op in ops:
        if op is None:
            frame = frame_id(jb.get_frame())
            if frame is not None:
                played.append(frame)
        else:
            jb.put(pkt(base + op))
        assert len(jb) <= 8
    assert played == sorted(set(played))
    s = jb.stats
    assert s.played == len(played)
    assert s.received == s.played + len(jb) + s.late + s.duplicates + s.overflow + s.strays


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 3)), max_size=200))
def test_any_packets_never_raise(packets: list[tuple[int, int]]) -> None:
    jb = JitterBuffer(target=2, capacity=8)
    for seq, ssrc in packets:
        jb.put(pkt(seq, ssrc=ssrc), now=0.0)
        assert len(jb) <= 8
        jb.get_frame(now=0.0)


@pytest.mark.parametrize("seed", range(5))
def test_over_a_lossy_jittery_link(seed: int) -> None:
    # A fake link: 20 ms frames, 5 % loss, 0-30 ms delay; ticks every 20 ms.
    rnd = random.Random(seed)
    frames = 500
    arrivals = sorted(
        (n * 0.020 + rnd.uniform(0, 0.030), n) for n in range(frames) if rnd.random() > 0.05
    )
    sent = {n for _, n in arrivals}
    jb = JitterBuffer(target=3, capacity=25)
    played: list[int] = []
    i = 0
    for tick in range(frames + 10):
        now = tick * 0.020 + 0.001
        while i < len(arrivals) and arrivals[i][0] <= now:
            jb.put(pkt(65000 + arrivals[i][1]), now=arrivals[i][0])
            i += 1
        frame = frame_id(jb.get_frame(now=now))
        if frame is not None:
            played.append(frame - 65000)
    assert played == sorted(played)
    # 60 ms of buffer absorbs 30 ms of jitter: nothing that arrived is late.
    assert set(played) == sent
    assert jb.stats.late == 0 and jb.stats.overflow == 0


def test_conceal_fades_then_stops() -> None:
    last = np.full(160, 1000, np.int16)
    first = conceal(last, 1)
    assert first is not None and first.dtype == np.int16 and first[0] == 500
    third = conceal(last, 3)
    assert third is not None and third[0] == 125
    assert conceal(last, 4) is None
    assert conceal(last, 0) is None
    assert conceal(None, 1) is None
    assert last[0] == 1000  # the caller's frame is untouched


def test_arrival_jitter_is_zero_for_a_steady_stream_and_follows_rfc3550() -> None:
    steady = ArrivalJitter()
    for n in range(50):
        steady.update(7, (4_294_967_000 + 160 * n) % 2**32, 0.020 * n)  # across the wrap
    assert steady.seconds < 1e-9
    # Every other packet 10 ms late: |D| is 10 ms each time, J climbs towards it.
    bumpy = ArrivalJitter()
    for n in range(400):
        bumpy.update(7, 160 * n, 0.020 * n + (0.010 if n % 2 else 0.0))
    assert abs(bumpy.seconds - 0.010) < 1e-4
    # A new source starts over.
    bumpy.update(8, 0, 100.0)
    assert bumpy.seconds == 0.0
