"""Where the speech is: an energy voice activity detector in 20 ms frames.

``speech_regions`` finds the stretches worth sending to an engine (silence is
never decoded); ``voice_profile`` gives the frame levels and the speech
threshold behind it, which ``pieces`` uses to cut a region at its pauses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16] | npt.NDArray[np.float32]


def to_float(samples: Samples) -> npt.NDArray[np.float32]:
    """Mono samples as float32 in -1..1."""
    if samples.dtype == np.int16:
        return (samples.astype(np.float32) / 32768.0).astype(np.float32)
    return np.asarray(samples, dtype=np.float32)


@dataclass(frozen=True)
class VadConfig:
    """Energy voice activity detection, in 20 ms frames."""

    frame_s: float = 0.02
    floor_dbfs: float = -50.0  # below this a frame is silence whatever the noise
    above_noise_db: float = 12.0  # a frame this far above the noise floor is speech
    merge_gap_s: float = 0.6  # pauses shorter than this stay inside one region
    pad_s: float = 0.15  # kept either side of a region: plosives start quietly
    min_speech_s: float = 0.15  # shorter blips (clicks) are dropped
    max_region_s: float = 20.0  # longer regions are cut at their quietest frame


@dataclass(frozen=True)
class VoiceProfile:
    """Frame levels (dBFS) of some samples and the level above which a frame is speech."""

    levels: npt.NDArray[np.float64]
    threshold: float
    frame: int  # samples per frame

    @property
    def voiced(self) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = self.levels > self.threshold
        return mask


def frame_levels(samples: npt.NDArray[np.float32], frame: int) -> npt.NDArray[np.float64]:
    """Mean power of each whole frame of ``frame`` samples, in dB (full scale is 0)."""
    count = len(samples) // frame
    if count == 0:
        return np.zeros(0)
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
    power = np.mean(frames * frames, axis=1)
    levels: npt.NDArray[np.float64] = 10.0 * np.log10(power + 1e-12)
    return levels


def voice_profile(
    samples: Samples, sample_rate: int, config: VadConfig | None = None
) -> VoiceProfile:
    """The levels of ``samples`` and its speech threshold.

    A frame is speech when it is above both an absolute floor and the noise
    floor (the 10th percentile of frame levels) by a margin.
    """
    config = config or VadConfig()
    frame = max(1, round(config.frame_s * sample_rate))
    levels = frame_levels(to_float(samples), frame)
    if not len(levels):
        return VoiceProfile(levels, config.floor_dbfs, frame)
    noise = float(np.percentile(levels, 10))
    return VoiceProfile(levels, max(config.floor_dbfs, noise + config.above_noise_db), frame)


def speech_regions(
    samples: Samples, sample_rate: int, config: VadConfig | None = None
) -> list[tuple[int, int]]:
    """(start, end) sample offsets of the stretches worth sending to an engine.

    Short pauses are bridged, regions padded, blips dropped and overlong
    regions split at their quietest point, so no region is longer than
    ``max_region_s``. ``pieces.plan_joined`` packs them into pieces before
    an engine sees them.
    """
    config = config or VadConfig()
    return regions_in(voice_profile(samples, sample_rate, config), len(samples), config)


def regions_in(
    profile: VoiceProfile, length: int, config: VadConfig | None = None
) -> list[tuple[int, int]]:
    """``speech_regions`` for samples (``length`` of them) whose profile is already known."""
    config = config or VadConfig()
    levels, frame = profile.levels, profile.frame
    if not len(levels):
        return []
    voiced = profile.voiced
    gap = round(config.merge_gap_s / config.frame_s)
    merged: list[list[int]] = []
    for start, end in runs(voiced):
        if merged and start - merged[-1][1] <= gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    pad = round(config.pad_s / config.frame_s)
    shortest = round(config.min_speech_s / config.frame_s)
    longest = max(2, round(config.max_region_s / config.frame_s))
    regions: list[tuple[int, int]] = []
    for start, end in merged:
        if int(voiced[start:end].sum()) < shortest:
            continue
        start, end = max(0, start - pad), min(len(levels), end + pad)
        for piece_start, piece_end in _split_long(levels, start, end, longest):
            regions.append((piece_start * frame, min(length, piece_end * frame)))
    return regions


def engine_chunks(samples: Samples, sample_rate: int, longest_s: float) -> list[tuple[int, int]]:
    """All of ``samples`` when short enough for one decoder pass, else its speech regions.

    Callers normally hand an engine one piece of a region; this keeps a direct
    call with a whole file within what the model can take.
    """
    if len(samples) <= longest_s * sample_rate:
        return [(0, len(samples))] if len(samples) else []
    return speech_regions(samples, sample_rate, VadConfig(max_region_s=longest_s))


def runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, end) of each run of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1).tolist()
    ends = np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, ends, strict=True))


def quiet_run_at(voiced: npt.NDArray[np.bool_], frame: int) -> int:
    """Frames of the quiet run around ``frame`` (0 if it is voiced)."""
    if frame <= 0 or frame >= len(voiced) or voiced[frame]:
        return 0
    low = frame
    while low > 0 and not voiced[low - 1]:
        low -= 1
    high = frame
    while high < len(voiced) and not voiced[high]:
        high += 1
    return high - low


def _split_long(
    levels: npt.NDArray[np.float64], start: int, end: int, longest: int
) -> Iterator[tuple[int, int]]:
    while end - start > longest:
        # Cut in the quietest frame of the second half of the allowed span, so a
        # piece is never shorter than half the limit and rarely cuts a word.
        low = start + longest // 2
        window = levels[low : start + longest]
        cut = low + int(np.argmin(window))
        yield start, cut
        start = cut
    yield start, end
