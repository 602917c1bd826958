"""A jitter buffer per speaker leg: frames out at the clock's pace, whatever the network did.

Packets are slotted by sequence number. ``get_frame`` is called once per
20 ms tick of the conference clock and returns the next frame's payload, or
None for a frame that is missing (the caller conceals it); it never waits,
so one bad leg cannot stall the conference. Playout starts once ``target``
frames are queued, or once the first of them has waited ``target`` frame
times (when the caller passes ``now``), so a lost second packet does not
hold a speaker back. After the buffer runs dry it refills to the target
again, and resumes at the oldest frame it holds: a network outage costs
the frames it lost, never a lasting delay.

Every limit is in frames: the buffer never spans more than ``capacity``
sequence numbers. A burst beyond that drops the oldest frames (counted as
``overflow``), never grows memory or delay.

A new SSRC resets the buffer at once. A packet far outside the stream
(sequence number more than 3,000 ahead or 100 behind, RFC 3550 A.1, or a
timestamp that jumps back, or forward by more than ``max_ts_jump``) is held
on probation: if the next packet continues it, the sender restarted and
the buffer resets to the new stream; otherwise it was a stray and is
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.seq import MAX_DROPOUT, MAX_MISORDER, seq_add, seq_diff, ts_add, ts_diff

Pcm = npt.NDArray[np.int16]


@dataclass
class JitterStats:
    """Counters since the buffer was made (``reset`` does not clear them).

    ``lost`` counts frames played out as gaps (never received, or received
    too late); a frame that arrives after its turn is also counted in
    ``late``. ``underruns`` counts ticks on which the buffer was empty while
    playing (loss, or the sender paused: silence suppression, hold).
    """

    received: int = 0
    played: int = 0
    lost: int = 0
    late: int = 0
    duplicates: int = 0
    overflow: int = 0
    underruns: int = 0
    strays: int = 0
    resets: int = 0


@dataclass(frozen=True, slots=True)
class _Held:
    seq: int
    ts: int
    payload: bytes
    now: float | None


class JitterBuffer:
    """Holds up to ``capacity`` frames of one leg and plays them ``target`` frames late."""

    def __init__(
        self,
        target: int = 2,
        capacity: int = 25,
        samples_per_frame: int = 160,
        clock_rate: int = 8000,
        max_ts_jump: int | None = None,
    ) -> None:
        if not 1 <= target < capacity:
            raise ValueError("need 1 <= target < capacity")
        self.target = target
        self.capacity = capacity
        self.samples_per_frame = samples_per_frame
        self.frame_seconds = samples_per_frame / clock_rate
        # Silence suppression moves the timestamp forward without new
        # sequence numbers; anything under a minute of it is not a restart.
        self.max_ts_jump = 60 * clock_rate if max_ts_jump is None else max_ts_jump
        self.stats = JitterStats()
        self._slots: dict[int, bytes] = {}
        self._next: int | None = None  # next to play; while buffering, the oldest held
        self._floor: int | None = None  # after running dry: the first frame not yet played
        self._newest = 0
        self._newest_ts = 0
        self._ssrc: int | None = None
        self._playing = False
        self._buffering_since: float | None = None
        self._probe: _Held | None = None

    def __len__(self) -> int:
        """Frames held now."""
        return len(self._slots)

    @property
    def playing(self) -> bool:
        """False while (re)filling to the target, True while playing out."""
        return self._playing

    def reset(self) -> None:
        """Forget every frame and start over with the next packet."""
        self._slots.clear()
        self._next = None
        self._floor = None
        self._playing = False
        self._buffering_since = None
        self._probe = None
        self.stats.resets += 1

    def put(self, packet: RtpPacket, now: float | None = None) -> None:
        """Queue an audio packet of this leg; ``now`` is its arrival time in seconds."""
        self.stats.received += 1
        if self._ssrc is not None and packet.ssrc != self._ssrc:
            # A new source (the phone re-INVITEd, a trunk switched media): start over.
            self.reset()
        self._ssrc = packet.ssrc
        self._add(packet.sequence_number, packet.timestamp, packet.payload, now)

    def _add(self, seq: int, ts: int, payload: bytes, now: float | None) -> None:
        if self._next is None:
            self._start(seq, ts, payload, now)
            return
        if self._discontinuous(seq, ts):
            probe = self._probe
            if (
                probe is not None
                and seq == seq_add(probe.seq, 1)
                and ts == ts_add(probe.ts, self.samples_per_frame)
            ):
                self.reset()
                self._start(probe.seq, probe.ts, probe.payload, probe.now)
                self._add(seq, ts, payload, now)
            else:
                if probe is not None:
                    self.stats.strays += 1
                self._probe = _Held(seq, ts, payload, now)
            return
        if self._probe is not None:
            self.stats.strays += 1
            self._probe = None
        ahead = seq_diff(seq, self._next)
        if ahead < 0:
            if self._playing or self._floor is not None:
                self.stats.late += 1
                return
            if seq_diff(self._newest, seq) >= self.capacity:
                self.stats.overflow += 1
                return
            self._next = seq  # reordered while filling: it is the oldest now
        if seq in self._slots:
            self.stats.duplicates += 1
            return
        self._slots[seq] = payload
        if seq_diff(seq, self._newest) > 0:
            self._newest, self._newest_ts = seq, ts
        if self._buffering_since is None and not self._playing:
            self._buffering_since = now
        self._trim()

    def _start(self, seq: int, ts: int, payload: bytes, now: float | None) -> None:
        self._slots[seq] = payload
        self._next = self._newest = seq
        self._newest_ts = ts
        self._buffering_since = now

    def _discontinuous(self, seq: int, ts: int) -> bool:
        ahead = seq_diff(seq, self._newest)
        if ahead > MAX_DROPOUT or ahead < -MAX_MISORDER:
            return True
        jump = ts_diff(ts, ts_add(self._newest_ts, ahead * self.samples_per_frame))
        return jump < -self.capacity * self.samples_per_frame or jump > self.max_ts_jump

    def _trim(self) -> None:
        """Keep the span from the next frame to the newest within ``capacity``."""
        assert self._next is not None
        excess = seq_diff(self._newest, self._next) + 1 - self.capacity
        if excess <= 0:
            return
        start = seq_add(self._newest, 1 - self.capacity)
        dropped = [s for s in self._slots if seq_diff(s, start) < 0]
        for s in dropped:
            del self._slots[s]
        self.stats.overflow += len(dropped)
        if self._playing:
            self.stats.lost += excess - len(dropped)
        self._next = start

    def get_frame(self, now: float | None = None) -> bytes | None:
        """The next frame's payload, or None: conceal (lost, late, or still filling).

        Call exactly once per frame time of the leg's clock, with that
        tick's ``now`` in seconds (the same clock as ``put``).
        """
        if self._next is None:
            return None
        if not self._playing:
            if not self._slots:
                return None
            waited = (
                now is not None
                and self._buffering_since is not None
                and now - self._buffering_since >= self.target * self.frame_seconds - 1e-9
            )
            if len(self._slots) < self.target and not waited:
                return None
            self._playing = True
            self._buffering_since = None
            self._next = min(self._slots, key=lambda s: seq_diff(s, self._newest))
        if not self._slots:
            # Ran dry: fill to the target before playing again.
            self._playing = False
            self._floor = self._next
            self._buffering_since = None
            self.stats.underruns += 1
            return None
        payload = self._slots.pop(self._next, None)
        self._next = seq_add(self._next, 1)
        if payload is None:
            self.stats.lost += 1
            return None
        self.stats.played += 1
        return payload

    def pop(self) -> bytes | None:
        """``get_frame()`` without a clock: playout starts on the frame count alone."""
        return self.get_frame()


class ArrivalJitter:
    """RFC 3550's interarrival jitter (A.8) of one stream, in seconds.

    ``update`` once per audio packet with its RTP timestamp and its arrival
    time; ``seconds`` is the running estimate (J += (|D| - J) / 16). A new
    SSRC starts over. Pure: the caller passes the time.
    """

    __slots__ = ("_clock_rate", "_last_arrival", "_last_ts", "_ssrc", "seconds")

    def __init__(self, clock_rate: int = 8000) -> None:
        self._clock_rate = clock_rate
        self._ssrc: int | None = None
        self._last_ts = 0
        self._last_arrival = 0.0
        self.seconds = 0.0

    def update(self, ssrc: int, timestamp: int, arrival: float) -> None:
        if ssrc != self._ssrc:
            self._ssrc, self._last_ts, self._last_arrival = ssrc, timestamp, arrival
            self.seconds = 0.0
            return
        # D(i-1, i): the arrival spacing less the sending spacing (wrap-safe).
        sent = ts_diff(timestamp, self._last_ts) / self._clock_rate
        transit = (arrival - self._last_arrival) - sent
        self._last_ts, self._last_arrival = timestamp, arrival
        self.seconds += (abs(transit) - self.seconds) / 16


def conceal(last: Pcm | None, repeats: int) -> Pcm | None:
    """A stand-in for the ``repeats``-th missing frame in a row, from the last good frame.

    The last frame, halved once per repeat, for three frames (60 ms): short
    losses are bridged without a click; after that, None, and the caller
    mixes silence rather than a buzz.
    """
    if last is None or not 1 <= repeats <= 3:
        return None
    return (last.astype(np.int32) >> repeats).astype(np.int16)
