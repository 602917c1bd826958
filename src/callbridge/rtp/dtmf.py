"""RFC 4733 telephone-events: parse, send, and turn a packet stream into key presses.

A phone sends one key as a run of packets sharing one RTP timestamp: the
first with the marker bit, updates every 50 ms with a growing duration, and
the end packet three times. ``DtmfReceiver`` reports each key once, on the
first packet it sees of it (so a caller can barge into a prompt without
waiting for the key's release), however many of the run arrive, lost,
reordered or repeated.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.seq import ts_diff

EVENT_DIGITS = "0123456789*#ABCD"
EVENT = struct.Struct("!BBH")
# Remember this many recent keys (their timestamps) to recognise repeats.
_REMEMBERED = 32


class DtmfError(ValueError):
    """A payload that is not a telephone-event."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Read the 4-byte event; redundant trailing blocks (RFC 4733 2.5.1) are ignored."""
        if len(payload) < EVENT.size:
            raise DtmfError(f"{len(payload)} bytes is shorter than a 4-byte telephone-event")
        event, flags, duration = EVENT.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        return EVENT.pack(
            self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration & 0xFFFF
        )

    @property
    def digit(self) -> str | None:
        return EVENT_DIGITS[self.event] if self.event < len(EVENT_DIGITS) else None


def digit_event(digit: str) -> int:
    index = EVENT_DIGITS.find(digit.upper())
    if len(digit) != 1 or index < 0:
        raise ValueError(f"{digit!r} is not a DTMF key")
    return index


@dataclass(frozen=True, slots=True)
class DigitPressed:
    digit: str
    timestamp: int
    duration: int


class DtmfReceiver:
    """Turns telephone-event packets into one DigitPressed per key press."""

    def __init__(self) -> None:
        self._seen: OrderedDict[int, str] = OrderedDict()
        self._last_ts: int | None = None

    def receive(self, packet: RtpPacket) -> DigitPressed | None:
        """Feed one telephone-event packet; returns the key the first time it is seen."""
        try:
            event = TelephoneEvent.parse(packet.payload)
        except DtmfError:
            return None
        digit = event.digit
        if digit is None:
            return None
        ts = packet.timestamp
        if ts in self._seen:
            return None
        # A run delayed so far that a newer key already started is stale.
        if self._last_ts is not None and ts_diff(ts, self._last_ts) < -8000 * 10:
            return None
        self._seen[ts] = digit
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        if self._last_ts is None or ts_diff(ts, self._last_ts) > 0:
            self._last_ts = ts
        return DigitPressed(digit=digit, timestamp=ts, duration=event.duration)


class DtmfSender:
    """The packets a phone sends for one key (used by tests and test tools)."""

    def __init__(self, ssrc: int, payload_type: int = 101, volume: int = 10) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.volume = volume

    def packets(
        self, digit: str, timestamp: int, first_seq: int, duration_ms: int = 120
    ) -> list[RtpPacket]:
        """Start, one update per 50 ms, and three end packets, all on ``timestamp``."""
        event = digit_event(digit)
        samples = duration_ms * 8
        steps = [*range(400, samples, 400), samples]
        packets: list[RtpPacket] = []
        seq = first_seq
        for i, duration in enumerate([160, *steps[:-1]]):
            packets.append(self._packet(event, False, duration, timestamp, seq, marker=i == 0))
            seq += 1
        for _ in range(3):
            packets.append(self._packet(event, True, steps[-1], timestamp, seq))
            seq += 1
        return packets

    def _packet(
        self, event: int, end: bool, duration: int, timestamp: int, seq: int, marker: bool = False
    ) -> RtpPacket:
        payload = TelephoneEvent(event, end, self.volume, duration).serialize()
        return RtpPacket(
            payload_type=self.payload_type,
            sequence_number=seq & 0xFFFF,
            timestamp=timestamp & 0xFFFFFFFF,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )
