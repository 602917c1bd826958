"""RTCP built and read (RFC 3550): reports round-trip, statistics, and a parser that only
raises ``RtcpError``."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.packet import RtcpError
from callbridge.rtp.rtcp import (
    ReceptionStats,
    ReportBlock,
    RtcpSession,
    bye,
    ntp_time,
    read_reports,
    receiver_report,
    sdes_cname,
    sender_report,
)

blocks = st.builds(
    ReportBlock,
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.integers(-(2**23), 2**23 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.lists(blocks, max_size=5))
def test_reports_round_trip(ssrc: int, ntp: int, report_blocks: list[ReportBlock]) -> None:
    compound = (
        sender_report(ssrc, ntp, 1234, 50, 8000, tuple(report_blocks))
        + receiver_report(ssrc ^ 1, tuple(report_blocks))
        + sdes_cname(ssrc, "bridge@callbridge")
        + bye(ssrc)
    )
    sr, rr = read_reports(compound)
    assert (sr.ssrc, sr.ntp, sr.packets, sr.octets) == (ssrc, ntp, 50, 8000)
    assert sr.blocks == rr.blocks == tuple(report_blocks)
    assert rr.ssrc == ssrc ^ 1 and rr.ntp is None


@given(st.binary(max_size=200))
def test_the_parser_reads_or_raises_rtcp_error(data: bytes) -> None:
    with contextlib.suppress(RtcpError):
        assert all(r.ssrc >= 0 for r in read_reports(data))


@given(st.lists(blocks, min_size=1, max_size=3), st.data())
def test_a_cut_or_bent_report_raises_rtcp_error(
    report_blocks: list[ReportBlock], data: st.DataObject
) -> None:
    packet = bytearray(sender_report(7, 1, 2, 3, 4, tuple(report_blocks)))
    cut = data.draw(st.integers(1, len(packet) - 1))
    with contextlib.suppress(RtcpError):
        read_reports(bytes(packet[:cut]))
    index = data.draw(st.integers(0, len(packet) - 1))
    packet[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RtcpError):
        read_reports(bytes(packet))


def test_loss_and_jitter_as_rfc_3550_counts_them() -> None:
    stats = ReceptionStats()
    # 100 packets, every 10th lost, around the sequence number's wrap; 20 ms apart,
    # every other one 4 ms late.
    for i in range(100):
        if i % 10 == 9:
            continue
        late = 0.004 if i % 2 else 0.0
        stats.update(0xABC, (65500 + i) & 0xFFFF, 1000 + 160 * i, i * 0.020 + late)
    block = stats.block(0, 0)
    assert block is not None
    assert block.cumulative_lost == 9 and block.highest_seq == (1 << 16) + (65500 + 98) % 65536
    assert 9 * 256 // 99 - 1 <= block.fraction_lost <= 9 * 256 // 99 + 1
    # |D| is 32 timestamp units (4 ms) each time: the estimate approaches it.
    assert 25 < block.jitter <= 32
    # The next interval: packet 99 lost, 100 heard: half of it.
    stats.update(0xABC, (65500 + 100) & 0xFFFF, 1000 + 16000, 2.0)
    assert stats.block(0, 0).fraction_lost == 128  # type: ignore[union-attr]
    stats.update(0xABC, (65500 + 101) & 0xFFFF, 1000 + 16160, 2.02)
    assert stats.block(0, 0).fraction_lost == 0  # type: ignore[union-attr]


def test_the_peer_view_and_round_trip_from_lsr_and_dlsr() -> None:
    ours = RtcpSession(ssrc=111, cname="bridge", now=0.0, rng=random.Random(1))
    peer = RtcpSession(ssrc=222, cname="phone", now=0.0, rng=random.Random(2))
    for i in range(50):  # the peer hears 50 of ours, we hear 50 of its
        peer.received_rtp(111, i, 160 * i, 0.02 * i)
        ours.received_rtp(222, i, 160 * i, 0.02 * i)
    assert not ours.due(1.0) and ours.due(10.0)
    # Our SR at t=10 reaches the peer at 10.03; its report at 10.5 reaches us at 10.53.
    ours_sr = ours.report(10.0, wall=1_800_000_000.0, rtp_timestamp=5, packets=50, octets=8000)
    peer.read(ours_sr, 10.03)
    theirs = peer.report(10.5, wall=1_800_000_000.5, rtp_timestamp=9, packets=50, octets=8000)
    ours.read(theirs, 10.53)
    assert ours.peer is not None and ours.peer.fraction_lost == 0
    assert ours.peer.rtt_ms is not None and abs(ours.peer.rtt_ms - 60) < 1
    assert ours.received == 1 and ours.bad == 0
    ours.read(b"\x80\xc8\x00\x09junk", 11.0)
    assert ours.bad == 1


def test_ntp_time() -> None:
    assert ntp_time(0.5) == (2_208_988_800 << 32) | (1 << 31)
