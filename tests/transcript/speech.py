"""Test recordings made of espeak-ng speech placed at known times, through the real recorder."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callbridge.dsp.resample import Resampler
from callbridge.media.mixer import FRAME_SAMPLES, PHONE_RATE, SAMPLE_RATE
from callbridge.media.recording import CallRecorder, assemble
from callbridge.rtp.g711 import ulaw_decode, ulaw_encode

ESPEAK = shutil.which("espeak-ng")
FLITE = shutil.which("flite")  # the transcript benchmark's second family of voices
SOX = shutil.which("sox")
# American voice, a little slower than espeak's default: closer to a speaker on a call.
VOICE = ("-v", "en-us", "-s", "150")
# British English at the same pace: Moonshine hears figures in it through the phone band
# where the American voice's "forty two" often reaches it as "to".
BRITISH_VOICE = ("-v", "en-gb-x-rp", "-s", "150")

needs_espeak = pytest.mark.skipif(
    ESPEAK is None or SOX is None, reason="needs Debian's espeak-ng and sox"
)


@functools.lru_cache(maxsize=64)
def speak(
    text: str, voice: tuple[str, ...] = VOICE, rate: int = PHONE_RATE
) -> npt.NDArray[np.int16]:
    """``text`` spoken by espeak-ng, as 16-bit mono samples at ``rate`` (resampled by sox).

    sox runs repeatable (``-R``): its dither is random otherwise, each run's audio
    differed in its last bits, and a borderline sentence was read two ways by the
    engine from one run to the next (a test passed half the time).
    """
    assert ESPEAK is not None and SOX is not None
    with tempfile.TemporaryDirectory() as tmp:
        raw, narrow = Path(tmp) / "raw.wav", Path(tmp) / "narrow.wav"
        subprocess.run([ESPEAK, *voice, "-w", str(raw), text], check=True, capture_output=True)
        subprocess.run(
            [SOX, "-R", str(raw), "-r", str(rate), "-b", "16", "-c", "1", str(narrow)],
            check=True,
            capture_output=True,
        )
        with wave.open(str(narrow), "rb") as wav:
            return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def speak_flite(
    text: str, voice: str, stretch: float = 1.0, rate: int = PHONE_RATE
) -> npt.NDArray[np.int16]:
    """``text`` spoken by Flite's ``voice`` ("slt", "rms"…), 16-bit mono at ``rate``.

    ``stretch`` above 1 speaks slower. Flite's voices are built from recordings of
    one speaker each (diphones or a statistical model of them): nearer a person on
    a call than espeak-ng's formant voices.
    """
    assert FLITE is not None and SOX is not None
    with tempfile.TemporaryDirectory() as tmp:
        raw, narrow = Path(tmp) / "raw.wav", Path(tmp) / "narrow.wav"
        command = [FLITE, "-voice", voice, "--setf", f"duration_stretch={stretch}"]
        subprocess.run([*command, "-t", text, "-o", str(raw)], check=True, capture_output=True)
        subprocess.run(
            [SOX, "-R", str(raw), "-r", str(rate), "-b", "16", "-c", "1", str(narrow)],
            check=True,
            capture_output=True,
        )
        with wave.open(str(narrow), "rb") as wav:
            return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def through_phone(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """``samples`` as a caller's audio reaches the bridge: G.711 μ-law, encoded and decoded."""
    return ulaw_decode(ulaw_encode(samples))


def in_the_mix(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """8 kHz ``samples`` as a phone caller's voice is mixed: μ-law, brought up to 16 kHz."""
    return Resampler(PHONE_RATE, SAMPLE_RATE).process(through_phone(samples))


@dataclass(frozen=True)
class Line:
    """One utterance: who says it (participant id), from when (seconds), and what."""

    participant: str
    at: float
    text: str


def build_recording(
    directory: Path,
    lines: list[Line],
    names: dict[str, str | None],
    *,
    tail_s: float = 1.0,
    stems: bool = True,
    voice: tuple[str, ...] = VOICE,
    phone: bool = False,
) -> None:
    """Record ``lines`` with ``CallRecorder`` as the bridge would, then ``assemble``.

    Each participant's stem gets only the frames in which they speak; the mix
    gets every frame. ``names`` gives each participant's display name (or None).
    With ``phone`` each line goes through G.711 μ-law first, as a caller's does
    (said at 8 kHz, brought up to the 16 kHz mix); without, it is said at 16 kHz.
    """
    if phone:
        voices = {line: in_the_mix(speak(line.text, voice)) for line in lines}
    else:
        voices = {line: speak(line.text, voice, SAMPLE_RATE) for line in lines}
    end_s = max(line.at + len(voices[line]) / SAMPLE_RATE for line in lines) + tail_s
    frames = int(end_s * SAMPLE_RATE) // FRAME_SAMPLES + 1
    total = frames * FRAME_SAMPLES
    tracks: dict[str, npt.NDArray[np.int32]] = {}
    talking: dict[str, npt.NDArray[np.bool_]] = {}
    for line in lines:
        track = tracks.setdefault(line.participant, np.zeros(total, dtype=np.int32))
        mask = talking.setdefault(line.participant, np.zeros(frames, dtype=np.bool_))
        start = round(line.at * SAMPLE_RATE)
        samples = voices[line]
        track[start : start + len(samples)] += samples
        mask[start // FRAME_SAMPLES : (start + len(samples)) // FRAME_SAMPLES + 1] = True
    mix = np.clip(sum(tracks.values()), -32768, 32767).astype(np.int16)
    recorder = CallRecorder(directory, event_id=7)
    if stems:
        for participant, name in names.items():
            recorder.annotate_stem(participant, role="speaker", caller_id=None, display_name=name)
    for index in range(frames):
        window = slice(index * FRAME_SAMPLES, (index + 1) * FRAME_SAMPLES)
        recorder.write_mix(index, mix[window])
        if stems:
            for participant, track in tracks.items():
                if talking[participant][index]:
                    recorder.write_stem(participant, index, track[window].astype(np.int16))
    recorder.close()
    assemble(directory)
