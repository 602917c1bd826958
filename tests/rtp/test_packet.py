from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.packet import (
    MAX_PACKET,
    RtcpError,
    RtcpHeader,
    RtpError,
    RtpExtension,
    RtpPacket,
    is_rtcp,
    parse_rtcp,
    write_header,
)

# A PCMU packet as baresip sends it: V=2, M=1, PT=0, seq 0x1234, ts 0x0a0b0c0d, ssrc 0xdeadbeef.
WIRE = bytes.fromhex("808012340a0b0c0ddeadbeef") + b"\xff" * 160
# A compound RTCP datagram: SR with one report block, then SDES with a CNAME.
# fmt: off
SR_RR = bytes.fromhex(
    "81c8000c"  # V=2 RC=1 SR, 13 words
    "deadbeef"  # sender SSRC
    "e8a1b2c3" "80000000"  # NTP timestamp
    "0a0b0c0d"  # RTP timestamp
    "00000064" "00003e80"  # 100 packets, 16000 octets
    "11223344" "00000000" "00001234" "00000000" "00000000" "00000000"  # report block
    "81ca0003" "deadbeef" "0104616263000000"  # SDES: CNAME "abc"
)
# fmt: on
RR_ONLY = bytes.fromhex("80c90001cafebabe")
BYE_EMPTY = bytes.fromhex("80cb0000")


def test_parse_captured_bytes() -> None:
    packet = RtpPacket.parse(WIRE)
    assert (packet.version, packet.payload_type, packet.marker) == (2, 0, True)
    assert (packet.sequence_number, packet.timestamp, packet.ssrc) == (
        0x1234,
        0x0A0B0C0D,
        0xDEADBEEF,
    )
    assert packet.payload == b"\xff" * 160
    assert packet.csrc == [] and packet.extension is None and packet.padding == 0
    assert bytes(packet) == WIRE


def test_csrc_extension_and_padding_are_skipped() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 0x01, 8]) + struct.pack("!HII", 1, 2, 3)
    csrc = struct.pack("!I", 99)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"
    data = header + csrc + extension + b"abcd" + b"\x00\x00\x03"
    packet = RtpPacket.parse(data)
    assert packet.csrc == [99]
    assert packet.extension == RtpExtension(0xBEDE, b"\x10\xaa\x00\x00")
    assert packet.payload == b"abcd"
    assert packet.padding == 3
    assert packet.payload_type == 8
    assert bytes(packet) == data


def test_empty_extension_and_payload() -> None:
    data = bytes([0x90, 0]) + WIRE[2:12] + struct.pack("!HH", 0x1000, 0)
    packet = RtpPacket.parse(data)
    assert packet.extension == RtpExtension(0x1000, b"")
    assert packet.payload == b""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "0 bytes is shorter than the 12-byte"),
        (b"\x80\x00", "2 bytes is shorter than the 12-byte"),
        (WIRE[:12] + bytes(MAX_PACKET), "longer than the 1500-byte limit"),
        (bytes([0x40]) + WIRE[1:], "version 1"),
        (bytes([0x00]) + WIRE[1:], "version 0"),
        (bytes([0x80, 200]) + WIRE[2:], "RTCP packet type 200"),
        (bytes([0x80, 211]) + WIRE[2:], "RTCP packet type 211"),
        (bytes([0x8F]) + WIRE[1:12], "15 CSRCs"),
        (bytes([0x90]) + WIRE[1:12] + b"\xbe\xde", "before the extension header"),
        (bytes([0x90]) + WIRE[1:12] + b"\xbe\xde\x00\x09", "extension of 9 words runs past"),
        (bytes([0xA0]) + WIRE[1:12] + b"\x00\x20", "padding length 32"),
        (bytes([0xA0]) + WIRE[1:12] + b"\x00\x00", "padding length 0"),
    ],
)
def test_each_rejection_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        RtpPacket.parse(data)


@given(st.binary(max_size=200))
def test_parse_returns_a_packet_or_raises_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        RtpPacket.parse(data)


@given(st.binary(max_size=60))
def test_parse_of_arbitrary_bytes_behind_a_valid_first_byte(tail: bytes) -> None:
    # Random bytes rarely start with version 2; these reach the deeper checks.
    for first in (0x80, 0x90, 0xA0, 0xB3, 0x8F):
        with contextlib.suppress(RtpError):
            packet = RtpPacket.parse(bytes([first]) + tail)
            assert RtpPacket.parse(bytes(packet)) == packet


packets = st.builds(
    RtpPacket,
    # With the marker bit, 72-83 make the second byte an RTCP type (RFC 5761).
    payload_type=st.integers(0, 127).filter(lambda pt: pt not in range(72, 84)),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=320),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    padding=st.integers(0, 255),
    extension=st.none()
    | st.builds(
        RtpExtension,
        st.integers(0, 0xFFFF),
        st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4]),
    ),
)


@given(packets)
def test_serialize_parse_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(packet)) == packet


@given(packets)
def test_every_truncation_parses_or_raises_rtp_error(packet: RtpPacket) -> None:
    data = bytes(packet)
    for end in range(len(data)):
        with contextlib.suppress(RtpError):
            RtpPacket.parse(data[:end])


@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.booleans(),
    st.integers(0, 40),
)
def test_write_header_matches_serialize(
    pt: int, seq: int, ts: int, ssrc: int, marker: bool, offset: int
) -> None:
    buffer = bytearray(offset + 12 + 4)
    write_header(memoryview(buffer), pt, seq, ts, ssrc, marker, offset)
    assert bytes(buffer[offset : offset + 12]) == bytes(RtpPacket(pt, seq, ts, ssrc, b"", marker))
    assert buffer[:offset] == bytes(offset)


def test_serialize_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="CSRCs"):
        bytes(RtpPacket(0, 0, 0, 0, csrc=list(range(16))))
    with pytest.raises(ValueError, match="whole words"):
        RtpExtension(1, b"abc")


def test_rtcp_is_recognised_and_rtp_is_not() -> None:
    assert is_rtcp(SR_RR) and is_rtcp(RR_ONLY) and is_rtcp(BYE_EMPTY)
    assert not is_rtcp(WIRE)
    assert not is_rtcp(b"\x80")
    # PT 8 with the marker is 0x88: RTP. 0xC8 (200) is an SR.
    assert not is_rtcp(bytes([0x80, 0x88]) + WIRE[2:])
    for packet_type in range(200, 212):
        assert is_rtcp(bytes([0x80, packet_type, 0, 1, 0, 0, 0, 0]))
    # Version 0 or 1 in the first byte: not ours at all.
    assert not is_rtcp(bytes([0x40, 200, 0, 1, 0, 0, 0, 0]))


def test_rtcp_compound_headers() -> None:
    sr, sdes = parse_rtcp(SR_RR)
    assert (sr.packet_type, sr.count, sr.length, sr.ssrc) == (200, 1, 52, 0xDEADBEEF)
    assert sr.sender_info is not None
    assert sr.sender_info.rtp_timestamp == 0x0A0B0C0D
    assert (sr.sender_info.packet_count, sr.sender_info.octet_count) == (100, 16000)
    assert sr.sender_info.ntp_timestamp == 0xE8A1B2C3_80000000
    assert (sdes.packet_type, sdes.length, sdes.ssrc) == (202, 16, 0xDEADBEEF)
    (rr,) = parse_rtcp(RR_ONLY)
    assert (rr.packet_type, rr.count, rr.ssrc, rr.sender_info) == (201, 0, 0xCAFEBABE, None)
    (bye,) = parse_rtcp(BYE_EMPTY)
    assert (bye.packet_type, bye.length, bye.ssrc) == (203, 4, None)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty datagram"),
        (b"\x80", "shorter than the 4-byte RTCP header"),
        (bytes.fromhex("40c90001cafebabe"), "RTCP version 1"),
        (bytes.fromhex("80600001cafebabe"), "packet type 96 is not RTCP"),
        (bytes.fromhex("80c90002cafebabe"), "says 12 bytes but only 8 remain"),
        (bytes.fromhex("81c90001cafebabe"), "count 1 needs 32 bytes"),
        (bytes.fromhex("80c80001cafebabe"), "count 0 needs 28 bytes"),
        (RR_ONLY + b"\x80", "shorter than the 4-byte RTCP header"),
    ],
)
def test_each_rtcp_rejection_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError, match=reason):
        parse_rtcp(data)


@given(st.binary(max_size=80))
def test_rtcp_parse_returns_headers_or_raises_rtcp_error(data: bytes) -> None:
    with contextlib.suppress(RtcpError):
        parse_rtcp(data)
    with contextlib.suppress(RtcpError):
        RtcpHeader.parse(bytes([0x80, 200]) + data)


def test_rtcp_error_is_an_rtp_error() -> None:
    # One ``except RtpError`` on the RTP path also covers RTCP.
    assert issubclass(RtcpError, RtpError)
