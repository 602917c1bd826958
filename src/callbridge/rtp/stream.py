"""The outgoing RTP stream of one leg: continuous numbering whatever the audio source.

A caller hears prompts, then hold music, then the conference: each source
change must not show in the RTP numbering, or the phone's jitter buffer
resets (a click, or worse, dropped audio). One ``RtpSender`` per leg owns
sequence number, timestamp and SSRC for the whole call.
"""

from __future__ import annotations

import secrets

from callbridge.rtp.packet import HEADER, RTP_VERSION


class RtpSender:
    def __init__(self, payload_type: int, samples_per_frame: int = 160) -> None:
        self.payload_type = payload_type & 0x7F
        self.samples_per_frame = samples_per_frame
        self.ssrc = secrets.randbits(32)
        # Random starting points (RFC 3550 5.1) make known-plaintext attacks harder.
        self.sequence_number = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self._first = True
        self.packets_sent = 0

    def next_packet(self, payload: bytes, marker: bool = False) -> bytes:
        """Header plus ``payload`` for the next frame; advances the numbering by one frame."""
        first = RTP_VERSION << 6
        second = (0x80 if marker or self._first else 0) | self.payload_type
        packet = HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
        self._first = False
        self.sequence_number = (self.sequence_number + 1) & 0xFFFF
        self.timestamp = (self.timestamp + self.samples_per_frame) & 0xFFFFFFFF
        self.packets_sent += 1
        return packet + payload

    def skip(self, frames: int = 1) -> None:
        """Let time pass without sending (silence suppression keeps the timestamp honest)."""
        self.timestamp = (self.timestamp + frames * self.samples_per_frame) & 0xFFFFFFFF
