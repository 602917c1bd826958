"""Mixing one 20 ms frame of a conference.

Every speaker hears everyone but themself (N−1), every listener hears the
full mix. Sums are taken in int32 so that ten loud speakers cannot wrap
around, and each speaker's mix is ``total − own`` rather than a fresh sum,
so the cost stays one pass over the frames however many speakers there are.
Pure numpy: no clock, no sockets.

The mix is wideband, 16 kHz (``rtp.codecs``: G.722 and Opus callers are
heard and hear at 16 kHz; a G.711 caller's audio is brought up from 8 kHz
and the mix brought down for them). What is recorded at 8 kHz (the IVR's
prompts, hold music, phone replays) and the cascade's links between nodes
stay in the phone band: ``PHONE_RATE``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
PHONE_RATE = 8000
PHONE_FRAME_SAMPLES = PHONE_RATE * FRAME_MS // 1000

Pcm = npt.NDArray[np.int16]
K = TypeVar("K", bound=Hashable)

# Above the knee, a sample is squeezed instead of cut: a burst of several
# loud speakers then sounds louder, not broken.
_KNEE = 24_000
_HEADROOM = 32_767 - _KNEE


def limit(total: npt.NDArray[np.int32]) -> Pcm:
    """Fold an int32 sum into int16 with a soft knee above ±24,000."""
    magnitude = np.abs(total)
    if int(magnitude.max(initial=0)) <= _KNEE:
        return total.astype(np.int16)
    over = np.maximum(magnitude - _KNEE, 0).astype(np.float32)
    squeezed = _KNEE + _HEADROOM * (over / (over + _HEADROOM))
    out = np.where(magnitude > _KNEE, np.sign(total) * squeezed, total)
    return np.clip(out, -32768, 32767).astype(np.int16)


SILENCE: Pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
SILENCE.flags.writeable = False


@dataclass
class MixResult(Generic[K]):
    """One tick's output: the full mix for listeners, and each speaker's N−1 mix."""

    full: Pcm
    minus: dict[K, Pcm] = field(default_factory=dict)
    talkers: frozenset[K] = frozenset()


class Mixer:
    """Mixes the frames of the speakers who sent audio this tick.

    Speakers who are muted or silent should simply be left out of ``frames``:
    they cost nothing, and they still receive the full mix (they are not in
    it, so N−1 for them equals the full mix).
    """

    def __init__(self, talk_threshold: int = 300) -> None:
        # Mean absolute amplitude above which a speaker counts as talking
        # (the console's talk indicator); about −40 dBFS.
        self.talk_threshold = talk_threshold

    def mix(self, frames: Mapping[K, Pcm]) -> MixResult[K]:
        if not frames:
            return MixResult(full=SILENCE)
        stacked = np.stack([np.asarray(f, dtype=np.int16) for f in frames.values()]).astype(
            np.int32
        )
        total = stacked.sum(axis=0, dtype=np.int32)
        # Row 0 is the full mix, row i+1 speaker i's N-1 mix: one limiter pass for all.
        rows = np.empty((len(stacked) + 1, stacked.shape[1]), dtype=np.int32)
        rows[0] = total
        np.subtract(total, stacked, out=rows[1:])
        limited = limit(rows)
        loudness = np.abs(stacked).mean(axis=1)
        talkers = frozenset(
            key for key, level in zip(frames, loudness, strict=True) if level >= self.talk_threshold
        )
        minus = {key: limited[i + 1] for i, key in enumerate(frames)}
        return MixResult(full=limited[0], minus=minus, talkers=talkers)
