from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.packet import RtpError, RtpPacket, is_rtcp, write_header
from callbridge.rtp.seq import ExtendedSequence, seq_diff, seq_lt, ts_diff

# A PCMU packet as baresip sends it: V=2, M=1, PT=0, seq 0x1234, ts 0x0a0b0c0d, ssrc 0xdeadbeef.
WIRE = bytes.fromhex("808012340a0b0c0ddeadbeef") + b"\xff" * 160


def test_parse_captured_bytes() -> None:
    packet = RtpPacket.parse(WIRE)
    assert (packet.payload_type, packet.marker) == (0, True)
    assert (packet.sequence_number, packet.timestamp, packet.ssrc) == (
        0x1234,
        0x0A0B0C0D,
        0xDEADBEEF,
    )
    assert packet.payload == b"\xff" * 160
    assert bytes(packet) == WIRE


def test_csrc_extension_and_padding_are_skipped() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 0x01, 8]) + struct.pack("!HII", 1, 2, 3)
    csrc = struct.pack("!I", 99)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    data = header + csrc + extension + b"abcd" + b"\x00\x00\x03"
    packet = RtpPacket.parse(data)
    assert packet.csrc == [99]
    assert packet.payload == b"abcd"
    assert packet.payload_type == 8


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00", "shorter than the 12-byte"),
        (bytes([0x40]) + WIRE[1:], "version 1"),
        (bytes([0x8F]) + WIRE[1:12], "CSRCs"),
        (bytes([0x90]) + WIRE[1:12] + b"\xbe\xde\x00\x09", "runs past"),
        (bytes([0xA0]) + WIRE[1:12] + b"\x00\x20", "padding length"),
        (bytes([0x80, 200]) + WIRE[2:], "RTCP"),
    ],
)
def test_each_rejection_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        RtpPacket.parse(data)


@given(st.binary(max_size=200))
def test_parse_returns_a_packet_or_raises_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        RtpPacket.parse(data)


@given(
    st.one_of(st.integers(0, 63), st.integers(96, 127)),  # 64-95 collide with RTCP
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=320),
    st.booleans(),
)
def test_serialize_parse_round_trip(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool
) -> None:
    packet = RtpPacket(pt, seq, ts, ssrc, payload, marker)
    assert RtpPacket.parse(bytes(packet)) == packet
    buffer = bytearray(12)
    write_header(buffer, pt, seq, ts, ssrc, marker)
    assert bytes(buffer) + payload == bytes(packet)


def test_rtcp_is_recognised() -> None:
    receiver_report = bytes([0x81, 201, 0, 7]) + b"\x00" * 28
    assert is_rtcp(receiver_report)
    assert not is_rtcp(WIRE)


def test_wrap_around_helpers() -> None:
    assert seq_diff(2, 65534) == 4
    assert seq_diff(65534, 2) == -4
    assert seq_lt(65535, 0)
    assert ts_diff(100, 0xFFFFFF00) == 356
    ext = ExtendedSequence()
    assert [ext.extend(s) for s in (65534, 65535, 0, 1, 65535, 2)] == [
        65534,
        65535,
        65536,
        65537,
        65535,
        65538,
    ]
