from __future__ import annotations

from itertools import pairwise

from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.seq import seq_diff, ts_diff
from callbridge.rtp.stream import RtpSender


def test_numbering_is_continuous_and_wraps() -> None:
    sender = RtpSender(payload_type=0, sequence_number=65535, timestamp=0xFFFFFF60, ssrc=7)
    first = RtpPacket.parse(sender.next_packet(b"\xff" * 160))
    second = RtpPacket.parse(sender.next_packet(b"\xff" * 160))
    assert first.marker and not second.marker
    assert (first.sequence_number, second.sequence_number) == (65535, 0)
    assert (first.timestamp, second.timestamp) == (0xFFFFFF60, 0)
    assert first.ssrc == second.ssrc == 7
    assert second.payload == b"\xff" * 160
    sender.skip(2)
    third = RtpPacket.parse(sender.next_packet(b"\xff" * 160))
    assert third.sequence_number == 1
    assert third.timestamp == 160 * 3
    assert (sender.packets_sent, sender.octets_sent) == (3, 480)


def test_payload_type_marker_and_samples_per_call() -> None:
    sender = RtpSender(payload_type=0, sequence_number=10, timestamp=1000)
    sender.next_packet(b"\xff" * 160)
    event = RtpPacket.parse(sender.next_packet(b"\x05\x0a\x00\xa0", 101, marker=True, samples=0))
    after = RtpPacket.parse(sender.next_packet(b"\xff" * 160))
    assert (event.payload_type, event.marker, event.timestamp) == (101, True, 1160)
    assert (after.payload_type, after.marker, after.timestamp) == (0, False, 1160)
    assert after.sequence_number == 12


def test_starting_values_are_random() -> None:
    senders = [RtpSender(0) for _ in range(20)]
    assert len({s.ssrc for s in senders}) > 15
    assert len({s.sequence_number for s in senders}) > 15
    assert len({s.timestamp for s in senders}) > 15
    assert all(0 <= s.sequence_number <= 0xFFFF and 0 <= s.ssrc <= 0xFFFFFFFF for s in senders)


def test_source_changes_do_not_show_in_the_numbering() -> None:
    sender = RtpSender(payload_type=0, ssrc=99)
    out: list[RtpPacket] = []
    for _ in range(3):  # a prompt, built here
        out.append(RtpPacket.parse(sender.next_packet(b"\x01" * 160)))
    for n in range(3):  # then a forwarded source with its own numbering
        data = sender.forward(RtpPacket(0, 50_000 + n, 7_000_000 + 160 * n, 1234, b"\x02" * 160))
        assert data is not None
        out.append(RtpPacket.parse(data))
    for n in range(2):  # then another, whose numbers wrap
        packet = RtpPacket(0, (65535 + n) & 0xFFFF, (0xFFFFFF60 + 160 * n) & 0xFFFFFFFF, 5, b"")
        data = sender.forward(packet)
        assert data is not None
        out.append(RtpPacket.parse(data))
    out.append(RtpPacket.parse(sender.next_packet(b"\x01" * 160)))  # and back to our own
    assert {p.ssrc for p in out} == {99}
    assert all(seq_diff(b.sequence_number, a.sequence_number) == 1 for a, b in pairwise(out))
    assert all(ts_diff(b.timestamp, a.timestamp) == 160 for a, b in pairwise(out))
    assert [p.marker for p in out] == [True, False, False, True, False, False, True, False, False]


def test_forwarding_keeps_gaps_and_order_within_a_source() -> None:
    sender = RtpSender(payload_type=0, sequence_number=100, timestamp=0, ssrc=1)
    sent = [sender.forward(RtpPacket(0, seq, seq * 160, 8, b"")) for seq in (10, 11, 13, 12, 14)]
    seqs = [RtpPacket.parse(d).sequence_number for d in sent if d is not None]
    assert seqs == [100, 101, 103, 102, 104]
    assert sender.sequence_number == 105


def test_forwarding_drops_what_came_before_the_switch() -> None:
    sender = RtpSender(payload_type=0, sequence_number=0, timestamp=0, ssrc=1)
    assert sender.forward(RtpPacket(0, 500, 0, 8, b"")) is not None
    assert sender.forward(RtpPacket(0, 499, 0, 8, b"")) is None


def test_frame_is_next_packet_without_the_cost() -> None:
    """The fan-out's fast path builds exactly what ``next_packet`` builds, across both wraps."""
    fast = RtpSender(payload_type=8, sequence_number=65530, timestamp=0xFFFFFC00, ssrc=0xDEADBEEF)
    slow = RtpSender(payload_type=8, sequence_number=65530, timestamp=0xFFFFFC00, ssrc=0xDEADBEEF)
    for n in range(20):
        payload = bytes([n]) * 160
        if n == 7:
            fast.skip(3)
            slow.skip(3)
        assert fast.frame(payload) == slow.next_packet(payload)
    assert RtpPacket.parse(RtpSender(0, ssrc=1).frame(b"\xff" * 160)).marker  # the first one
    assert (fast.packets_sent, fast.octets_sent) == (slow.packets_sent, slow.octets_sent)
    assert (fast.sequence_number, fast.timestamp) == (slow.sequence_number, slow.timestamp)
