"""Integer-ratio resampling of 20 ms frames: 8 kHz ↔ 16 kHz, and 48 kHz → 16 kHz.

The conference mixes at 16 kHz (``media.mixer.SAMPLE_RATE``); a G.711 leg
is 8 kHz and Opus decodes at 48 kHz. Each stream keeps its own
``Resampler``: the filter's memory is the end of the previous frame, so a
stream of frames comes out as one continuous signal, with no click at every
20 ms edge that resampling frames one by one would leave.

The filter is a windowed sinc (Kaiser, β 8: about 80 dB of stop band) cut
at (up) or a little below (down) the lower of the two Nyquist frequencies,
applied as a polyphase pair of small convolutions: upsampling by ``up``
interleaves ``up`` phases of the filter, downsampling by ``down`` keeps
every ``down``-th output. The delay is a fixed half the filter's length
(10 ms up, 3 ms down), the same for every frame. Pure numpy, no state beyond
the history.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
_Float = npt.NDArray[np.float32]

# Filter length at the higher rate, per unit of ratio: longer is steeper (and
# later). Going up, the slope sits on the band's edge and must be steep; going
# down it has the room below 4 kHz, and half the length costs half the delay.
UP_TAPS_PER_RATIO = 160
DOWN_TAPS_PER_RATIO = 48
# Where the slope is half-way down, as a share of the lower rate's Nyquist frequency.
# Going down, 0.94: nothing above 4 kHz may fold back into the phone band
# (flat to 3.5 kHz, 4 kHz already gone). Going up, the whole band: a phone
# caller's 3.5 to 4 kHz is where "seven" and "sixty" differ, and the speech
# models heard it when the transcript resampled the 8 kHz recording itself
# (figure recall of the espeak-ng voices, bench/transcript_bench.py --hd:
# 0.50 with 0.94 and 48 taps per ratio, 0.58 with 1.0 and 96, 0.57 through
# the FFT; test_transcript_call's "Q2 2025" wants the slope steeper still,
# 160); its images, just above 4 kHz, are faint.
DOWN_CUTOFF = 0.94
UP_CUTOFF = 1.0


@cache
def lowpass(ratio: int, share: float = DOWN_CUTOFF, per_ratio: int = DOWN_TAPS_PER_RATIO) -> _Float:
    """The anti-alias / anti-image filter for a change of rate by ``ratio`` (gain 1)."""
    taps = per_ratio * ratio + 1
    cutoff = share / ratio / 2
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, 8.0)
    h /= h.sum()
    out: _Float = h.astype(np.float32)
    out.flags.writeable = False
    return out


class Resampler:
    """One stream's change of rate from ``rate_in`` to ``rate_out`` (an integer ratio).

    ``process(frame)`` takes the next frame (any length that is a whole
    number of output samples) and returns it at the new rate, int16.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in == rate_out:
            raise ValueError("nothing to resample: the rates are equal")
        if rate_out % rate_in and rate_in % rate_out:
            raise ValueError(f"{rate_in} → {rate_out} Hz is not an integer ratio")
        self.rate_in = rate_in
        self.rate_out = rate_out
        self.up = max(rate_out // rate_in, 1)
        self.down = max(rate_in // rate_out, 1)
        ratio = max(self.up, self.down)
        if self.up > 1:
            h = lowpass(ratio, UP_CUTOFF, UP_TAPS_PER_RATIO)
        else:
            h = lowpass(ratio, DOWN_CUTOFF, DOWN_TAPS_PER_RATIO)
        if self.up > 1:
            # Zero-stuffing keeps 1/up of the energy: each phase carries gain up.
            # Phase p gives output samples up·k + p from input samples k, k−1, …
            padded = np.concatenate([h, np.zeros((-len(h)) % self.up, np.float32)])
            self._phases = [padded[p :: self.up] * self.up for p in range(self.up)]
            self._history = np.zeros(len(self._phases[0]) - 1, np.float32)
        else:
            self._kernel = h
            self._history = np.zeros(len(h) - 1, np.float32)
        self._offset = 0  # downsampling: where in the next frame the first kept sample is

    def process(self, frame: npt.ArrayLike) -> Pcm:
        samples = np.asarray(frame, dtype=np.int16).astype(np.float32)
        joined = np.concatenate([self._history, samples])
        if self.up > 1:
            out = np.empty(len(samples) * self.up, np.float32)
            for p, phase in enumerate(self._phases):
                out[p :: self.up] = np.convolve(joined, phase, mode="valid")
        else:
            filtered = np.convolve(joined, self._kernel, mode="valid")
            out = filtered[self._offset :: self.down]
            self._offset = (self._offset - len(filtered)) % self.down
        if len(self._history):
            self._history = joined[-len(self._history) :]
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def resample(frame: npt.ArrayLike, rate_in: int, rate_out: int) -> Pcm:
    """One frame on its own (no history: the start rings in from silence). For tests, tools."""
    return Resampler(rate_in, rate_out).process(frame)
