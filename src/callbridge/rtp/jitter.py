"""A jitter buffer per speaker leg: frames out at the clock's pace, whatever the network did.

Packets are slotted by sequence number. ``pop`` is called once per 20 ms
tick and returns the next frame's payload, or None for a frame that is late
or lost (the caller conceals it); it never waits, so one bad leg cannot
stall the conference clock. A leg that floods the buffer loses its oldest
frames, never memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.seq import seq_diff

Pcm = npt.NDArray[np.int16]


@dataclass
class JitterStats:
    received: int = 0
    played: int = 0
    lost: int = 0
    late: int = 0
    duplicates: int = 0
    overflow: int = 0
    resets: int = 0


class JitterBuffer:
    """Holds up to ``capacity`` frames and starts playing once ``target`` are queued."""

    def __init__(self, target: int = 2, capacity: int = 25) -> None:
        if not 1 <= target < capacity:
            raise ValueError("need 1 <= target < capacity")
        self.target = target
        self.capacity = capacity
        self.stats = JitterStats()
        self._slots: dict[int, bytes] = {}
        self._next: int | None = None  # sequence number to play next
        self._ssrc: int | None = None
        self._playing = False

    def __len__(self) -> int:
        return len(self._slots)

    def reset(self) -> None:
        self._slots.clear()
        self._next = None
        self._playing = False
        self.stats.resets += 1

    def put(self, packet: RtpPacket) -> None:
        """Queue an audio packet."""
        self.stats.received += 1
        if self._ssrc is not None and packet.ssrc != self._ssrc:
            # A new source (the phone re-INVITEd, a trunk switched media): start over.
            self.reset()
        self._ssrc = packet.ssrc
        seq = packet.sequence_number
        if self._next is None:
            self._next = seq
        ahead = seq_diff(seq, self._next)
        if ahead < 0:
            self.stats.late += 1
            return
        if ahead >= self.capacity * 4:
            # A jump far ahead is a restart of the sender, not loss of hundreds of frames.
            self.reset()
            self._ssrc = packet.ssrc
            self._next = seq
            ahead = 0
        if seq in self._slots:
            self.stats.duplicates += 1
            return
        self._slots[seq] = packet.payload
        while len(self._slots) > self.capacity:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        assert self._next is not None
        while self._next not in self._slots:
            self._next = (self._next + 1) & 0xFFFF
        del self._slots[self._next]
        self._next = (self._next + 1) & 0xFFFF
        self.stats.overflow += 1

    def pop(self) -> bytes | None:
        """The next frame's payload, or None (lost, late or not yet buffered)."""
        if self._next is None:
            return None
        if not self._playing:
            if len(self._slots) < self.target:
                return None
            self._playing = True
        if not self._slots:
            # Ran dry: re-buffer to the target before playing again.
            self._playing = False
            self.stats.lost += 1
            self._next = (self._next + 1) & 0xFFFF
            return None
        payload = self._slots.pop(self._next, None)
        self._next = (self._next + 1) & 0xFFFF
        if payload is None:
            self.stats.lost += 1
            return None
        self.stats.played += 1
        return payload


def conceal(last: Pcm | None, repeats: int) -> Pcm | None:
    """Stand-in for a lost frame: the last one, fading out; None after a few in a row."""
    if last is None or repeats > 3:
        return None
    return (last.astype(np.float32) * (0.5**repeats)).astype(np.int16)
