"""RTP packets (RFC 3550): parse with a length check before every read, serialize.

RTCP arriving on the RTP port (RFC 5761 multiplexing, or a confused peer) is
recognised by its packet type and set aside, not parsed as audio.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
HEADER_SIZE = HEADER.size  # 12
MAX_PACKET = 1500


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet; the message says why."""


def is_rtcp(data: bytes) -> bool:
    """True for RTCP (packet types 192–223 in the second byte, RFC 5761 section 4)."""
    return len(data) >= 2 and (data[0] >> 6) == RTP_VERSION and 192 <= data[1] <= 223


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Read one packet; raises RtpError naming the first thing wrong with it."""
        if len(data) < HEADER_SIZE:
            raise RtpError(f"{len(data)} bytes is shorter than the 12-byte RTP header")
        if len(data) > MAX_PACKET:
            raise RtpError(f"{len(data)} bytes is longer than {MAX_PACKET}")
        first, second, seq, ts, ssrc = HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}, expected 2")
        if 192 <= second <= 223:
            raise RtpError("an RTCP packet, not RTP")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        csrc_count = first & 0x0F
        offset = HEADER_SIZE + 4 * csrc_count
        if len(data) < offset:
            raise RtpError(f"header says {csrc_count} CSRCs but the packet ends first")
        csrc = list(struct.unpack_from(f"!{csrc_count}I", data, HEADER_SIZE)) if csrc_count else []
        if has_extension:
            if len(data) < offset + 4:
                raise RtpError("header extension flag set but no extension header")
            (words,) = struct.unpack_from("!H", data, offset + 2)
            offset += 4 + 4 * words
            if len(data) < offset:
                raise RtpError(f"header extension of {words} words runs past the packet")
        end = len(data)
        padding = 0
        if has_padding:
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
        )

    def serialize(self) -> bytes:
        """The packet on the wire (no extension; padding is not re-added)."""
        first = (RTP_VERSION << 6) | len(self.csrc)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = HEADER.pack(
            first, second, self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
        )
        if self.csrc:
            header += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        return header + self.payload

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
    """Write a plain 12-byte header into ``buffer`` at ``offset`` (the fan-out fast path)."""
    HEADER.pack_into(
        buffer,
        offset,
        RTP_VERSION << 6,
        (0x80 if marker else 0) | (payload_type & 0x7F),
        sequence_number & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )
