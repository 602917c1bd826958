from __future__ import annotations

from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.stream import RtpSender


def test_numbering_is_continuous_and_wraps() -> None:
    sender = RtpSender(payload_type=0)
    sender.sequence_number = 65535
    sender.timestamp = 0xFFFFFF60
    first = RtpPacket.parse(sender.next_packet(b"\xff" * 160))
    second = RtpPacket.parse(sender.next_packet(b"\xff" * 160))
    assert first.marker and not second.marker
    assert (first.sequence_number, second.sequence_number) == (65535, 0)
    assert (first.timestamp, second.timestamp) == (0xFFFFFF60, 0)
    assert first.ssrc == second.ssrc == sender.ssrc
    sender.skip(2)
    third = RtpPacket.parse(sender.next_packet(b"\xff" * 160))
    assert third.sequence_number == 1
    assert third.timestamp == 160 * 3
