"""RTCP for one leg (RFC 3550 section 6): what we report, and what the peer reports of us.

Pure: packets are built from numbers and read into numbers, time is a
parameter. ``RtcpSession`` is a leg's side of it:

- ``received(seq, timestamp, now)`` for each RTP packet of the peer's we
  read, which keeps RFC 3550's reception statistics (A.1 sequence
  tracking, A.3 loss, A.8 jitter);
- ``due(now)`` says when a report is owed (every ``INTERVAL`` seconds,
  randomised by half either way as 6.3.1 asks, so a thousand legs started
  together do not report together) and ``report(now, sender)`` builds it:
  an SR while we send (a leg always does: the mix or a prompt), with one
  report block about the peer once we have heard it, then SDES CNAME (a
  compound packet always carries one, 6.1);
- ``read(data, now)`` takes the peer's RTCP: the report block about our
  SSRC gives the loss and jitter the peer sees (``peer``), and the round
  trip from its LSR/DLSR (A.8's last paragraph); an SR's NTP time is kept
  for the LSR/DLSR of our next report.

The parser raises ``RtcpError`` (from ``rtp.packet``) for anything malformed
and nothing else.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from callbridge.rtp.packet import RTCP_HEADER, RTCP_RR, RTCP_SR, RtcpError, parse_rtcp
from callbridge.rtp.seq import seq_diff, ts_diff

RTCP_SDES = 202
RTCP_BYE = 203
SDES_CNAME = 1
INTERVAL = 5.0  # RFC 3550 6.2's minimum between one participant's reports
NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)
REPORT_BLOCK = struct.Struct("!IIIIII")
MAX_DROPOUT = 3000  # A.1: a jump this far ahead is a jump, not a restart
MAX_MISORDER = 100


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (6.4.1): what ``reporter`` saw of the source ``ssrc``."""

    ssrc: int
    fraction_lost: int  # of 256, since the last report
    cumulative_lost: int  # signed 24 bits (duplicates can make it negative)
    highest_seq: int  # extended: cycles << 16 | sequence number
    jitter: int  # in RTP timestamp units
    lsr: int  # the middle 32 bits of the NTP time of the last SR heard from ``ssrc``
    dlsr: int  # delay since that SR, in 1/65536 s

    def pack(self) -> bytes:
        lost = (self.fraction_lost & 0xFF) << 24 | (self.cumulative_lost & 0xFFFFFF)
        return REPORT_BLOCK.pack(
            self.ssrc, lost, self.highest_seq, self.jitter, self.lsr, self.dlsr
        )

    @classmethod
    def unpack(cls, data: bytes | memoryview, offset: int) -> ReportBlock:
        ssrc, lost, highest, jitter, lsr, dlsr = REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class Report:
    """An SR or RR: who sent it, its NTP time (SR only), its report blocks."""

    ssrc: int
    blocks: tuple[ReportBlock, ...]
    ntp: int | None = None  # 64-bit NTP timestamp of an SR
    packets: int | None = None  # an SR's sender's packet count
    octets: int | None = None


def _header(packet_type: int, count: int, body: bytes) -> bytes:
    return RTCP_HEADER.pack(0x80 | count, packet_type, len(body) // 4) + body


def ntp_time(unix: float) -> int:
    """``unix`` seconds as a 64-bit NTP timestamp."""
    seconds = int(unix)
    fraction = int((unix - seconds) * (1 << 32)) & 0xFFFFFFFF
    return ((seconds + NTP_EPOCH_OFFSET) & 0xFFFFFFFF) << 32 | fraction


def sender_report(
    ssrc: int,
    ntp: int,
    rtp_timestamp: int,
    packets: int,
    octets: int,
    blocks: tuple[ReportBlock, ...] = (),
) -> bytes:
    body = struct.pack(
        "!IIIIII", ssrc, ntp >> 32, ntp & 0xFFFFFFFF, rtp_timestamp & 0xFFFFFFFF,
        packets & 0xFFFFFFFF, octets & 0xFFFFFFFF,
    )  # fmt: skip
    return _header(RTCP_SR, len(blocks), body + b"".join(b.pack() for b in blocks[:31]))


def receiver_report(ssrc: int, blocks: tuple[ReportBlock, ...] = ()) -> bytes:
    body = struct.pack("!I", ssrc) + b"".join(b.pack() for b in blocks[:31])
    return _header(RTCP_RR, len(blocks[:31]), body)


def sdes_cname(ssrc: int, cname: str) -> bytes:
    text = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, SDES_CNAME, len(text)) + text + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)  # the item list ends with a null, padded to a word
    return _header(RTCP_SDES, 1, chunk)


def bye(ssrc: int) -> bytes:
    return _header(RTCP_BYE, 1, struct.pack("!I", ssrc))


def read_reports(data: bytes | bytearray | memoryview) -> list[Report]:
    """The SRs and RRs of a compound RTCP packet; raises ``RtcpError`` if it is malformed."""
    view = memoryview(bytes(data))
    reports: list[Report] = []
    offset = 0
    for header in parse_rtcp(view):
        if header.packet_type in (RTCP_SR, RTCP_RR) and header.ssrc is not None:
            start = offset + 8 + (20 if header.packet_type == RTCP_SR else 0)
            blocks = tuple(ReportBlock.unpack(view, start + 24 * i) for i in range(header.count))
            info = header.sender_info
            reports.append(
                Report(
                    header.ssrc,
                    blocks,
                    info.ntp_timestamp if info else None,
                    info.packet_count if info else None,
                    info.octet_count if info else None,
                )
            )
        offset += header.length
    return reports


class ReceptionStats:
    """RFC 3550 A.1/A.3/A.8 for the one source a leg hears."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self._restart(None, 0)

    def _restart(self, ssrc: int | None, seq: int) -> None:
        self.ssrc = ssrc
        self.base_seq = self.max_seq = seq
        self.cycles = 0
        self.received = 0
        self.jitter = 0.0  # in timestamp units
        self._bad_seq: int | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._last: tuple[float, int] | None = None  # arrival (timestamp units), timestamp

    def update(self, ssrc: int, seq: int, timestamp: int, now: float) -> None:
        if ssrc != self.ssrc:
            self._restart(ssrc, seq)
        else:
            delta = seq_diff(seq, self.max_seq)
            if 0 < delta < MAX_DROPOUT:
                if seq < self.max_seq:
                    self.cycles += 1 << 16
                self.max_seq = seq
            elif delta >= MAX_DROPOUT or delta <= -MAX_MISORDER:
                # A big jump: believed only if the next packet follows it (A.1).
                if seq == self._bad_seq:
                    self._restart(ssrc, seq)
                else:
                    self._bad_seq = (seq + 1) & 0xFFFF
                    return
        self.received += 1
        arrival = now * self.clock_rate
        if self._last is not None:
            # D(i-1, i): arrival spacing less sending spacing (ts_diff: across the wrap).
            d = abs((arrival - self._last[0]) - ts_diff(timestamp, self._last[1]))
            self.jitter += (d - self.jitter) / 16
        self._last = (arrival, timestamp)

    def block(self, lsr: int, dlsr: int) -> ReportBlock | None:
        """The report block about the source (None: nothing heard yet); starts a new interval."""
        if self.ssrc is None:
            return None
        extended = self.cycles + self.max_seq
        expected = extended - self.base_seq + 1
        lost = max(-(1 << 23), min(expected - self.received, (1 << 23) - 1))
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min((lost_interval << 8) // expected_interval, 255)
        return ReportBlock(
            self.ssrc, fraction, lost, extended & 0xFFFFFFFF, int(self.jitter), lsr, dlsr
        )


@dataclass(frozen=True, slots=True)
class PeerView:
    """What the peer last reported of our stream."""

    fraction_lost: float  # 0..1, over its last interval
    cumulative_lost: int
    jitter_ms: float
    rtt_ms: float | None  # from its LSR/DLSR; None before it heard an SR of ours


class RtcpSession:
    """A leg's RTCP: reports owed, built, and the peer's read."""

    def __init__(self, ssrc: int, cname: str, now: float, rng: random.Random | None = None) -> None:
        self.ssrc = ssrc
        self.cname = cname
        self.stats = ReceptionStats()
        self.peer: PeerView | None = None
        self.sent = 0
        self.received = 0  # RTCP packets read
        self.bad = 0  # malformed or failing SRTCP
        self._rng = rng or random.Random()
        self._next = now + self._interval() / 2  # the first report comes sooner (6.2)
        self._peer_sr: tuple[int, float] | None = None  # (middle 32 bits of its NTP, when)
        self._our_srs: dict[int, float] = {}  # LSR value -> the wall time we sent it

    def _interval(self) -> float:
        return INTERVAL * self._rng.uniform(0.5, 1.5)

    def received_rtp(self, ssrc: int, seq: int, timestamp: int, now: float) -> None:
        self.stats.update(ssrc, seq, timestamp, now)

    def due(self, now: float) -> bool:
        return now >= self._next

    def report(
        self, now: float, wall: float, rtp_timestamp: int, packets: int, octets: int
    ) -> bytes:
        """Our compound report (SR + SDES), as of ``now`` (the loop's clock) and ``wall``
        (Unix time, for the NTP timestamp)."""
        self._next = now + self._interval()
        lsr = dlsr = 0
        if self._peer_sr is not None:
            lsr = self._peer_sr[0]
            dlsr = int((now - self._peer_sr[1]) * 65536) & 0xFFFFFFFF
        block = self.stats.block(lsr, dlsr)
        ntp = ntp_time(wall)
        middle = (ntp >> 16) & 0xFFFFFFFF
        self._our_srs[middle] = now
        while len(self._our_srs) > 8:
            del self._our_srs[next(iter(self._our_srs))]
        self.sent += 1
        blocks = (block,) if block is not None else ()
        return sender_report(self.ssrc, ntp, rtp_timestamp, packets, octets, blocks) + sdes_cname(
            self.ssrc, self.cname
        )

    def read(self, data: bytes, now: float) -> None:
        """The peer's compound RTCP (already SRTCP-unprotected); malformed: counted."""
        try:
            reports = read_reports(data)
        except RtcpError:
            self.bad += 1
            return
        self.received += 1
        for report in reports:
            if report.ntp is not None:
                self._peer_sr = ((report.ntp >> 16) & 0xFFFFFFFF, now)
            for block in report.blocks:
                if block.ssrc != self.ssrc:
                    continue
                rtt = None
                sent_at = self._our_srs.get(block.lsr) if block.lsr else None
                if sent_at is not None:
                    rtt = max(0.0, (now - sent_at) - block.dlsr / 65536) * 1000
                self.peer = PeerView(
                    block.fraction_lost / 256,
                    block.cumulative_lost,
                    1000 * block.jitter / self.stats.clock_rate,
                    rtt,
                )
