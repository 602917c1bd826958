"""RFC 4733 telephone-events: parse, send, and turn a packet stream into key presses.

A phone sends one key as a run of packets sharing one RTP timestamp (the
moment the key went down): the first with the marker bit, updates about
every 50 ms with a growing duration, and the final packet, with the E bit,
three times. The next key gets a new timestamp.

``DtmfReceiver`` reports each key once, **on the first packet it sees of
it**, not on the end packet. That choice is for latency: a caller's key
barges into a prompt and a passcode's last digit is checked while the key
is still down, instead of 100-200 ms later; and it costs nothing in
robustness, since the run's timestamp identifies the key whichever of its
packets arrives first (a lone end packet still reports). The price is that
the reported duration is whatever that first packet said, often 20 ms.

The telephone-event payload (RFC 4733 section 2.3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     event     |E|R| volume    |          duration             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.seq import ts_add

EVENT_DIGITS = "0123456789*#ABCD"
EVENT = struct.Struct("!BBH")
MAX_DURATION = 0xFFFF
# Samples between updates of a key in progress (50 ms at 8 kHz, RFC 4733 2.5.1.2).
UPDATE_INTERVAL = 400
# Remember this many recent keys, by timestamp, to recognise their late and
# repeated packets. Keys are at least ~150 ms apart; 64 keys is >10 s.
_REMEMBERED = 64


class DtmfError(ValueError):
    """A payload that is not a telephone-event; the message says why."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event block: event code, E bit, volume (-dBm0) and duration (samples)."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes | bytearray | memoryview) -> TelephoneEvent:
        """Read the first 4-byte event of a payload; raises DtmfError.

        Anything after the first block is ignored: RFC 4733 packs several
        events in one payload only through RFC 2198 redundancy, which has
        its own payload type.
        """
        if len(payload) < EVENT.size:
            raise DtmfError(f"{len(payload)} bytes is shorter than a 4-byte telephone-event")
        event, flags, duration = EVENT.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        """The 4-byte payload (the R bit is sent as zero)."""
        if not 0 <= self.event <= 255:
            raise ValueError(f"event {self.event} does not fit a byte")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} is not 0..63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"duration {self.duration} is not 0..65535")
        return EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        """'0'-'9', '*', '#', 'A'-'D' for events 0-15; None for other events (flash, tones)."""
        return EVENT_DIGITS[self.event] if self.event < len(EVENT_DIGITS) else None


def digit_event(digit: str) -> int:
    """The event code of a DTMF key ('0'-'9', '*', '#', 'A'-'D', case-insensitive)."""
    index = EVENT_DIGITS.find(digit.upper())
    if len(digit) != 1 or index < 0:
        raise ValueError(f"{digit!r} is not a DTMF key")
    return index


@dataclass(frozen=True, slots=True)
class DigitPressed:
    """A key press, reported once. ``duration`` is what the first packet seen said."""

    digit: str
    timestamp: int
    duration: int


@dataclass(slots=True)
class _Key:
    event: int
    ended: bool
    duration: int


class DtmfReceiver:
    """Turns the telephone-event packets of one leg into one ``DigitPressed`` per key.

    Call ``receive`` with every packet of the negotiated telephone-event
    payload type, in arrival order. A key is identified by (SSRC, RTP
    timestamp): repeated, retransmitted and reordered packets of a key
    already reported return None; so do events that are not DTMF keys and
    the continuation segments of a key held longer than 8 s (RFC 4733
    2.5.1.3). A new SSRC (the phone re-INVITEd, a trunk switched media)
    starts afresh.
    """

    def __init__(self) -> None:
        self._keys: OrderedDict[int, _Key] = OrderedDict()
        self._ssrc: int | None = None
        self.ignored = 0  # malformed payloads and non-DTMF events

    def receive(self, packet: RtpPacket) -> DigitPressed | None:
        """Feed one telephone-event packet; returns the key the first time it is seen."""
        return self.receive_payload(packet.timestamp, packet.payload, packet.ssrc)

    def receive_payload(
        self, timestamp: int, payload: bytes | bytearray | memoryview, ssrc: int = 0
    ) -> DigitPressed | None:
        """Like ``receive``, from the header fields that matter and the payload."""
        try:
            event = TelephoneEvent.parse(payload)
        except DtmfError:
            self.ignored += 1
            return None
        digit = event.digit
        if digit is None:
            self.ignored += 1
            return None
        if ssrc != self._ssrc:
            self._keys.clear()
            self._ssrc = ssrc
        key = self._keys.get(timestamp)
        if key is not None and key.event == event.event:
            key.ended |= event.end
            key.duration = max(key.duration, event.duration)
            return None
        # A different event on a known timestamp breaks RFC 4733 ("a new event
        # gets a new timestamp"), but a broken sender's second key is still a key.
        continued = self._continued(timestamp, event.event)
        self._keys[timestamp] = _Key(event.event, event.end, event.duration)
        while len(self._keys) > _REMEMBERED:
            self._keys.popitem(last=False)
        if continued:
            return None
        return DigitPressed(digit=digit, timestamp=timestamp, duration=event.duration)

    def _continued(self, timestamp: int, event: int) -> bool:
        # A long key's next segment starts where the previous one saturated.
        previous = self._keys.get(ts_add(timestamp, -MAX_DURATION))
        return previous is not None and previous.event == event and not previous.ended


@dataclass(frozen=True, slots=True)
class TimedPacket:
    """A packet of a key's run and when to send it, in samples after the key went down."""

    offset: int
    packet: RtpPacket


class DtmfSender:
    """The packets a phone sends for one key (used by tests and test tools).

    Each key is one run on one timestamp: the first packet (marker set,
    duration 160 = 20 ms), an update every 400 samples (50 ms) while the key
    is down, then three identical end packets 20 ms apart.
    """

    def __init__(self, ssrc: int, payload_type: int = 101, volume: int = 10) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.volume = volume

    def schedule(
        self, digit: str, timestamp: int, first_seq: int, duration_ms: int = 120
    ) -> list[TimedPacket]:
        """The run for ``digit`` starting at ``timestamp`` and sequence ``first_seq``.

        Sequence numbers rise by one per packet from ``first_seq`` (wrapping);
        the caller's next packet takes ``first_seq + len(run)``.
        """
        event = digit_event(digit)
        total = duration_ms * 8
        if not 160 <= total <= MAX_DURATION:
            raise ValueError(f"a key of {duration_ms} ms is outside 20..8191 ms")
        updates = range(160, total, UPDATE_INTERVAL)
        run: list[TimedPacket] = []
        seq = first_seq
        for duration in updates:
            run.append(TimedPacket(duration, self._packet(event, False, duration, timestamp, seq)))
            seq += 1
        for i in range(3):
            end = self._packet(event, True, total, timestamp, seq)
            run.append(TimedPacket(total + 160 * i, end))
            seq += 1
        run[0].packet.marker = True  # the start of the event (RFC 4733 2.5.1.1)
        return run

    def packets(
        self, digit: str, timestamp: int, first_seq: int, duration_ms: int = 120
    ) -> list[RtpPacket]:
        """The packets of ``schedule`` without their send times."""
        return [item.packet for item in self.schedule(digit, timestamp, first_seq, duration_ms)]

    def _packet(self, event: int, end: bool, duration: int, timestamp: int, seq: int) -> RtpPacket:
        payload = TelephoneEvent(event, end, self.volume, duration).serialize()
        return RtpPacket(
            payload_type=self.payload_type,
            sequence_number=seq & 0xFFFF,
            timestamp=timestamp & 0xFFFFFFFF,
            ssrc=self.ssrc,
            payload=payload,
        )
