"""RTP packets (RFC 3550): parse with a length check before every read, serialize.

RTCP arriving on the RTP port (RFC 5761 multiplexing, or a confused peer) is
recognised by its packet type and set aside, not parsed as audio; the SR/RR
headers can be read with ``RtcpHeader.parse`` for statistics.

The RTP header (RFC 3550 section 5.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           timestamp                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           synchronization source (SSRC) identifier            |
    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
    |            contributing source (CSRC) identifiers             |
    |                             ....                              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
HEADER_SIZE = HEADER.size  # 12
EXTENSION_HEADER = struct.Struct("!HH")
MAX_PACKET = 1500
MAX_CSRC = 15

# RTCP packet types assigned so far (IANA): SR 200, RR 201, SDES 202, BYE 203,
# APP 204, RTPFB 205, PSFB 206, XR 207, AVB 208, RSI 209, TOKEN 210, IDMS 211.
# RFC 5761 section 4 tells RTP and RTCP apart by this byte, which for RTP is
# the marker bit plus a payload type (72–83) that RTP must not use.
RTCP_SR = 200
RTCP_RR = 201
RTCP_TYPES = range(200, 212)


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet; the message says why."""


class RtcpError(RtpError):
    """A datagram that is not a well-formed RTCP packet; the message says why."""


def is_rtcp(data: bytes | bytearray | memoryview) -> bool:
    """True for an RTCP packet on the RTP port (RFC 5761 section 4).

    Call before ``RtpPacket.parse`` on every datagram of a leg's RTP socket;
    RTCP is then counted and ignored rather than rejected as bad RTP.
    """
    return len(data) >= 2 and (data[0] >> 6) == RTP_VERSION and data[1] in RTCP_TYPES


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 5.3.1): a 16-bit profile and whole 32-bit words."""

    profile: int
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) % 4:
            raise ValueError(f"extension data of {len(self.data)} bytes is not whole words")


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the pad length read (0 when none)."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    padding: int = 0
    extension: RtpExtension | None = None

    @property
    def version(self) -> int:
        """Always 2: ``parse`` refuses anything else."""
        return RTP_VERSION

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Read one datagram; raises RtpError naming the first thing wrong with it.

        Call after ``is_rtcp`` has said no. The header extension is skipped
        for the payload and kept in ``extension``; padding is stripped.
        """
        length = len(data)
        if length < HEADER_SIZE:
            raise RtpError(f"{length} bytes is shorter than the 12-byte RTP header")
        if length > MAX_PACKET:
            raise RtpError(f"{length} bytes is longer than the {MAX_PACKET}-byte limit")
        first, second, seq, ts, ssrc = HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}, expected 2")
        if second in RTCP_TYPES:
            raise RtpError(f"RTCP packet type {second}, not RTP")
        csrc_count = first & 0x0F
        offset = HEADER_SIZE + 4 * csrc_count
        if length < offset:
            raise RtpError(f"header says {csrc_count} CSRCs but the packet ends at {length} bytes")
        csrc = list(struct.unpack_from(f"!{csrc_count}I", data, HEADER_SIZE))
        extension = None
        if first & 0x10:
            if length < offset + EXTENSION_HEADER.size:
                raise RtpError("extension bit set but the packet ends before the extension header")
            profile, words = EXTENSION_HEADER.unpack_from(data, offset)
            start = offset + EXTENSION_HEADER.size
            offset = start + 4 * words
            if length < offset:
                raise RtpError(f"header extension of {words} words runs past the packet")
            extension = RtpExtension(profile, bytes(data[start:offset]))
        end = length
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or end - padding < offset:
                raise RtpError(f"padding length {padding} does not fit the packet")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrc=csrc,
            padding=padding,
            extension=extension,
        )

    def serialize(self) -> bytes:
        """The packet on the wire; ``parse(serialize(p)) == p`` for any valid packet."""
        if len(self.csrc) > MAX_CSRC:
            raise ValueError(f"{len(self.csrc)} CSRCs, at most {MAX_CSRC} fit the header")
        first = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        parts = [
            HEADER.pack(
                first,
                second,
                self.sequence_number & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            ),
            struct.pack(f"!{len(self.csrc)}I", *self.csrc),
        ]
        if self.extension is not None:
            ext = self.extension
            parts.append(EXTENSION_HEADER.pack(ext.profile & 0xFFFF, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            if not 0 < self.padding < 256:
                raise ValueError(f"padding {self.padding} is not 1..255 bytes")
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)

    __bytes__ = serialize


def write_header(
    buffer: bytearray | memoryview,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    marker: bool = False,
    offset: int = 0,
) -> None:
    """Write a plain 12-byte header into ``buffer`` at ``offset``.

    The fan-out fast path: a mixer that sends one frame to thousands of legs
    fills a preallocated buffer in place instead of building an RtpPacket
    and joining bytes per leg.
    """
    HEADER.pack_into(
        buffer,
        offset,
        RTP_VERSION << 6,
        (0x80 if marker else 0) | (payload_type & 0x7F),
        sequence_number & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    )


# -- RTCP ------------------------------------------------------------------

RTCP_HEADER = struct.Struct("!BBH")
SENDER_INFO = struct.Struct("!IIIII")


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """The sender-info block of an SR (RFC 3550 6.4.1)."""

    ntp_timestamp: int  # 64-bit NTP time, seconds << 32 | fraction
    rtp_timestamp: int
    packet_count: int
    octet_count: int


@dataclass(frozen=True, slots=True)
class RtcpHeader:
    """The common header of one RTCP packet, plus the sender info of an SR.

    ``count`` is the reception report count of SR/RR (a subtype for other
    types); ``length`` is the packet's size in bytes, header included;
    ``ssrc`` is the first 32-bit word after the header (the sender's SSRC for
    SR, RR, BYE and SDES), None in a BYE that names no source. Report blocks,
    SDES items and the rest are not read: callbridge only counts RTCP.
    """

    packet_type: int
    count: int
    length: int
    ssrc: int | None
    padding: bool
    sender_info: SenderInfo | None = None

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> RtcpHeader:
        """Read the RTCP packet starting at ``offset``; raises RtcpError."""
        available = len(data) - offset
        if available < RTCP_HEADER.size:
            raise RtcpError(f"{available} bytes is shorter than the 4-byte RTCP header")
        first, packet_type, words = RTCP_HEADER.unpack_from(data, offset)
        if first >> 6 != RTP_VERSION:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        if packet_type not in RTCP_TYPES:
            raise RtcpError(f"packet type {packet_type} is not RTCP")
        length = 4 * (words + 1)
        if available < length:
            raise RtcpError(f"length field says {length} bytes but only {available} remain")
        count = first & 0x1F
        body = offset + RTCP_HEADER.size
        ssrc = None if length < 8 else int.from_bytes(data[body : body + 4], "big")
        sender_info = None
        needed = 4
        if packet_type == RTCP_SR:
            needed = 8 + SENDER_INFO.size + 24 * count
        elif packet_type == RTCP_RR:
            needed = 8 + 24 * count
        if length < needed:
            raise RtcpError(
                f"packet type {packet_type} with count {count} needs {needed} bytes, "
                f"its length is {length}"
            )
        if packet_type == RTCP_SR:
            ntp_hi, ntp_lo, rtp_ts, packets, octets = SENDER_INFO.unpack_from(data, body + 4)
            sender_info = SenderInfo((ntp_hi << 32) | ntp_lo, rtp_ts, packets, octets)
        return cls(packet_type, count, length, ssrc, bool(first & 0x20), sender_info)


def parse_rtcp(data: bytes | bytearray | memoryview) -> list[RtcpHeader]:
    """The headers of every packet in a compound RTCP datagram; raises RtcpError."""
    headers: list[RtcpHeader] = []
    offset = 0
    while offset < len(data):
        header = RtcpHeader.parse(data, offset)
        headers.append(header)
        offset += header.length
    if not headers:
        raise RtcpError("an empty datagram is not RTCP")
    return headers
