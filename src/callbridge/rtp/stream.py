"""The outgoing RTP stream of one leg: continuous numbering whatever the audio source.

A caller hears prompts, then hold music, then the conference: each source
change must not show in the RTP numbering, or the phone's jitter buffer
resets (a click, or worse, dropped audio). One ``RtpSender`` per leg owns
sequence number, timestamp and SSRC for the whole call; frames it builds
itself (``next_packet``) and packets forwarded from elsewhere (``forward``,
rewritten as LiveKit does when it switches the source of a track) share
that one numbering.
"""

from __future__ import annotations

import secrets
import struct

from callbridge.rtp.packet import HEADER, RTP_VERSION, RtpPacket
from callbridge.rtp.seq import SEQ_MOD, TS_MOD, seq_add, seq_diff, ts_add, ts_diff

# The header of an ordinary frame: version and payload type as one 16-bit word.
_FRAME_HEADER = struct.Struct("!HHII")


class RtpSender:
    """Sequence number, timestamp and SSRC of one outgoing leg.

    Starting values are random (RFC 3550 5.1: it makes known-plaintext
    attacks on encryption harder and tells a restarted stream from the old
    one); tests may pass their own.
    """

    def __init__(
        self,
        payload_type: int,
        samples_per_frame: int = 160,
        *,
        ssrc: int | None = None,
        sequence_number: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.payload_type = payload_type & 0x7F
        self.samples_per_frame = samples_per_frame
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc & 0xFFFFFFFF
        self.sequence_number = (
            secrets.randbits(16) if sequence_number is None else sequence_number & 0xFFFF
        )
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp & 0xFFFFFFFF
        self.packets_sent = 0
        self.octets_sent = 0
        self._first = True
        # Forwarding: the source being forwarded and its offsets into our numbering.
        self._source: int | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._segment_start = 0
        self._frame_word = (RTP_VERSION << 14) | self.payload_type

    @property
    def first(self) -> bool:
        """No packet sent yet: the next one carries the marker bit."""
        return self._first

    def take_over(
        self, sequence_number: int, timestamp: int, first: bool, packets: int, octets: int
    ) -> None:
        """Continue from numbering kept elsewhere meanwhile (``rtp.batch.RtpBatch``).

        ``packets`` and ``octets`` were sent on this stream's behalf and are added.
        """
        self.sequence_number = sequence_number & 0xFFFF
        self.timestamp = timestamp & 0xFFFFFFFF
        self._first = first
        self.packets_sent += packets
        self.octets_sent += octets

    def frame(self, payload: bytes) -> bytes:
        """``next_packet(payload)`` for an ordinary frame, at a fraction of the cost.

        A conference sends one of these to every listener every 20 ms: it is
        the hottest line of the bridge, so it does the same arithmetic inline.
        """
        if self._first:
            return self.next_packet(payload)
        seq, ts = self.sequence_number, self.timestamp
        self.sequence_number = (seq + 1) % SEQ_MOD
        self.timestamp = (ts + self.samples_per_frame) % TS_MOD
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return _FRAME_HEADER.pack(self._frame_word, seq, ts, self.ssrc) + payload

    def next_packet(
        self,
        payload: bytes,
        pt: int | None = None,
        marker: bool = False,
        samples: int | None = None,
    ) -> bytes:
        """Header plus ``payload`` for the next frame; call once per frame sent.

        ``pt`` defaults to the leg's payload type; ``samples`` (default one
        frame) is how far the timestamp advances after this packet. The
        first packet of the stream carries the marker bit.
        """
        payload_type = self.payload_type if pt is None else pt & 0x7F
        second = (0x80 if marker or self._first else 0) | payload_type
        packet = HEADER.pack(
            RTP_VERSION << 6, second, self.sequence_number, self.timestamp, self.ssrc
        )
        self._first = False
        self.sequence_number = seq_add(self.sequence_number, 1)
        self.timestamp = ts_add(
            self.timestamp, self.samples_per_frame if samples is None else samples
        )
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return packet + payload

    def skip(self, frames: int = 1) -> None:
        """Let ``frames`` frame times pass without sending (hold, silence suppression).

        The timestamp keeps counting real time, so the far end plays the
        next packet after a pause rather than right after the last one.
        """
        self.timestamp = ts_add(self.timestamp, frames * self.samples_per_frame)

    def forward(self, packet: RtpPacket) -> bytes | None:
        """``packet`` from another source, renumbered into this leg's stream.

        A packet from a new source (SSRC) continues our numbering right
        after the last packet sent, with the marker bit set (a new
        talkspurt); call ``skip`` first for time that passed in between.
        Within one source, gaps in its numbering are kept (so the far end
        sees the loss) and a reordered packet keeps its place; a packet
        that would land before the switch to its source returns None.
        """
        marker = packet.marker
        if packet.ssrc != self._source:
            self._source = packet.ssrc
            self._seq_offset = seq_diff(self.sequence_number, packet.sequence_number)
            self._ts_offset = ts_diff(self.timestamp, packet.timestamp)
            self._segment_start = self.sequence_number
            marker = True
        seq = seq_add(packet.sequence_number, self._seq_offset)
        ts = ts_add(packet.timestamp, self._ts_offset)
        if seq_diff(seq, self._segment_start) < 0:
            return None
        if seq_diff(seq, self.sequence_number) >= 0:
            self.sequence_number = seq_add(seq, 1)
            self.timestamp = ts_add(ts, self.samples_per_frame)
        second = (0x80 if marker or self._first else 0) | (packet.payload_type & 0x7F)
        self._first = False
        self.packets_sent += 1
        self.octets_sent += len(packet.payload)
        return HEADER.pack(RTP_VERSION << 6, second, seq, ts, self.ssrc) + packet.payload
