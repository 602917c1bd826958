#!/usr/bin/env python3
"""Make the IVR prompts: espeak-ng speaks each text, sox turns it into 8 kHz mono 16-bit.

Run from the repository root after changing a text in media/prompts.py:
    .venv/bin/python scripts/make_prompts.py
or, to make only some prompts and leave the others' files untouched:
    .venv/bin/python scripts/make_prompts.py replay_ended replay_paused
The WAV files are committed; neither the server nor CI runs this.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from callbridge.media.prompts import PROMPT_DIR, PROMPT_TEXT, PromptName

RATE = 8000


def speak(text: str, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "175", "-w", str(raw), text], check=True)
        # Telephone band, a little gain and 200 ms of silence after.
        subprocess.run(
            [
                "sox",
                str(raw),
                "-r",
                str(RATE),
                "-c",
                "1",
                "-b",
                "16",
                str(target),
                "highpass",
                "250",
                "lowpass",
                "3400",
                "gain",
                "-n",
                "-3",
                "pad",
                "0",
                "0.2",
            ],
            check=True,
        )


def hold_music(target: Path, seconds: float = 8.0) -> None:
    """Soft alternating chords: recognisably 'please wait' without a licence."""
    t = np.arange(int(RATE * seconds)) / RATE
    chords = [
        (261.6, 329.6, 392.0),
        (220.0, 277.2, 329.6),
        (246.9, 311.1, 370.0),
        (196.0, 246.9, 293.7),
    ]
    out = np.zeros_like(t)
    span = seconds / len(chords)
    for i, chord in enumerate(chords):
        part = (t >= i * span) & (t < (i + 1) * span)
        local = t[part] - i * span
        envelope = np.minimum(1, local / 0.3) * np.minimum(1, (span - local) / 0.3)
        out[part] = envelope * sum(np.sin(2 * np.pi * f * local) for f in chord) / len(chord)
    samples = (out * 6000).astype("<i2")
    import wave

    with wave.open(str(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.tobytes())


def main(argv: list[str]) -> int:
    try:
        wanted = {PromptName(arg) for arg in argv} or set(PromptName)
    except ValueError as exc:
        print(f"make_prompts: {exc}", file=sys.stderr)
        return 2
    PROMPT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in PROMPT_TEXT.items():
        if name in wanted:
            speak(text, PROMPT_DIR / f"{name.value}.wav")
            print(f"{name.value}.wav: {text}")
    if PromptName.HOLD_MUSIC in wanted:
        hold_music(PROMPT_DIR / f"{PromptName.HOLD_MUSIC.value}.wav")
        print("hold_music.wav")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
