"""In-band DTMF: keys heard as tones in the decoded audio, and merged with RFC 4733's.

Some gateways send a caller's keys as the tones themselves (Q.23: one of
four row frequencies plus one of four column frequencies) rather than as
RFC 4733 events. ``ToneDetector`` hears them in 8 kHz frames (20 ms, as the
leg decodes them) by the Goertzel algorithm's measure, one DFT term at each
of the eight exact frequencies (computed as one matrix product), and
takes a frame as a key only when all of the usual checks pass:

- both tones above ``MIN_TONE_LEVEL`` (about -35 dBm0 each);
- the twist (column tone over row tone) within +4/-8 dB;
- each tone at least ``RELATIVE_PEAK_DB`` above the other tones of its group;
- the two tones holding at least ``MIN_TONE_SHARE`` of the frame's energy
  (speech and music spread theirs over many frequencies).

A key is reported once it has held for ``MIN_FRAMES`` frames in a row
(40 ms), and the next key only after ``MIN_GAP_FRAMES`` frames without
one: a key held down is one key, and a lone frame of noise in the middle
of a tone does not make it two.

``KeyMerge`` takes keys from both paths and counts each press once: a
gateway that sends a key both ways is heard twice, 0-100 ms apart, and the
second of a pair (the same digit from the other path within
``MERGE_WINDOW``) is dropped. Each key pairs with at most one from the
other path, so a digit pressed twice quickly still counts twice.

Pure: frames in, keys out; time is a parameter.
"""

from __future__ import annotations

import enum
import functools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")

# A tone's amplitude below this (int16 units; a 0 dBm0 sine's is about 22,700
# in μ-law) is not a key: about -35 dBm0, under the -25 dBm0 of Q.24's
# acceptance, with room for a lossy line.
MIN_TONE_LEVEL = 400.0
# Twist limits in dB: the column (high) tone may be up to 4 dB above the
# row tone (forward twist) and up to 8 dB below it (reverse twist).
MAX_FORWARD_TWIST_DB = 4.0
MAX_REVERSE_TWIST_DB = 8.0
# Each tone this many dB above the next strongest of its own group.
RELATIVE_PEAK_DB = 8.0
# The two tones' share of the frame's energy.
MIN_TONE_SHARE = 0.75
MIN_FRAMES = 2  # 40 ms at 20 ms a frame
MIN_GAP_FRAMES = 2  # 40 ms between keys
# Keys of one press arriving by both paths (RFC 4733 and in-band) come this close.
MERGE_WINDOW = 0.5

Samples = npt.NDArray[np.int16]
_FREQUENCIES = np.array(ROWS + COLUMNS)


@functools.cache
def _basis(length: int) -> npt.NDArray[np.float64]:
    """The eight Goertzel filters over ``length`` samples (exact frequencies), as one real
    matrix: the cosines' rows, then the sines'. (A matrix product is one call into BLAS
    where the recurrence would be a Python loop per sample.)"""
    angles = 2 * np.pi * np.outer(_FREQUENCIES, np.arange(length)) / RATE
    return np.concatenate([np.cos(angles), np.sin(angles)])


class ToneDetector:
    """One leg's in-band key detector: ``feed`` each decoded frame, in order."""

    def __init__(self) -> None:
        self._candidate: str | None = None
        self._held = 0
        self._reported: str | None = None
        self._quiet = MIN_GAP_FRAMES  # frames since the last frame with a key

    def classify(self, frame: Samples) -> str | None:
        """The key this one frame holds, or None; no history."""
        length = len(frame)
        if not 80 <= length <= 480:
            # Under 10 ms is too short to tell 697 Hz from 770 Hz; over 60 ms is no ptime.
            return None
        basis = _basis(length)
        samples = frame.astype(np.float64)
        energy = float(np.dot(samples, samples))
        min_power = MIN_TONE_LEVEL**2 * length / 2
        if energy < 2 * min_power:
            return None  # too quiet to hold two tones: most frames, at little cost
        # A tone of amplitude a gives |X|² = (a·N/2)², and carries a²·N/2 of the energy.
        parts = basis @ samples
        powers = ((parts[:8] ** 2 + parts[8:] ** 2) * (2.0 / length)).tolist()
        # Eight numbers: plain Python from here is quicker than numpy's per-call cost.
        rows, columns = powers[:4], powers[4:]
        row_power, column_power = max(rows), max(columns)
        if row_power < min_power or column_power < min_power:
            return None
        twist = 10 * math.log10(column_power / row_power)
        if twist > MAX_FORWARD_TWIST_DB or twist < -MAX_REVERSE_TWIST_DB:
            return None
        peak = 10 ** (RELATIVE_PEAK_DB / 10)
        if sorted(rows)[-2] * peak > row_power or sorted(columns)[-2] * peak > column_power:
            return None
        if row_power + column_power < MIN_TONE_SHARE * energy:
            return None
        row, column = rows.index(row_power), columns.index(column_power)
        return KEYS[row][column]

    def feed(self, frame: Samples) -> str | None:
        """The next frame; returns a key the moment it has held long enough, once."""
        key = self.classify(frame)
        if key is None:
            self._quiet += 1
            self._held = 0
            self._candidate = None
            if self._quiet >= MIN_GAP_FRAMES:
                self._reported = None
            return None
        self._quiet = 0
        if key != self._candidate:
            self._candidate, self._held = key, 0
        self._held += 1
        # Once a key is reported, nothing more is until a gap: a lone frame
        # without the key inside a tone is not one.
        if self._reported is None and self._held >= MIN_FRAMES:
            self._reported = key
            return key
        return None


class KeyPath(enum.Enum):
    RFC4733 = "rfc4733"
    INBAND = "inband"


@dataclass
class _Seen:
    digit: str
    path: KeyPath
    at: float
    paired: bool = False


class KeyMerge:
    """Counts a press once when it comes both as RFC 4733 and as tones."""

    def __init__(self, window: float = MERGE_WINDOW) -> None:
        self.window = window
        self._recent: deque[_Seen] = deque(maxlen=32)
        self.merged = 0  # keys dropped as the other path's copy

    def take(self, digit: str, path: KeyPath, now: float) -> bool:
        """True when ``digit`` (by ``path``, at ``now``) is a new press to act on."""
        while self._recent and now - self._recent[0].at > self.window:
            self._recent.popleft()
        for seen in self._recent:
            if not seen.paired and seen.path is not path and seen.digit == digit:
                seen.paired = True
                self.merged += 1
                return False
        self._recent.append(_Seen(digit, path, now))
        return True
