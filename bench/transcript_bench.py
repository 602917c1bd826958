#!/usr/bin/env python3
"""Transcript benchmark: real-time factor and word error rate of each installed engine.

A few minutes of espeak-ng speech (American voice, 150 words a minute),
resampled to 8 kHz as a call records it, with a second of silence between
sentences, is transcribed by every installed engine the way
``transcribe_recording`` does it: energy VAD, then the engine on each region.

    .venv/bin/python bench/transcript_bench.py                 # about 3 minutes of speech
    .venv/bin/python bench/transcript_bench.py --repeat 1      # about 1 minute, quicker

It prints its figures and the command that reproduces them. Needs Debian's
espeak-ng and sox.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callbridge.transcript.engine import available_engines, get_engine, speech_regions
from callbridge.transcript.wer import word_error_rate

RATE = 8000
SENTENCES = [
    "Good morning and welcome to the Northwind third quarter earnings call.",
    "Today we will discuss our results, our outlook, and then take your questions.",
    "Revenue grew twelve percent compared with the same quarter last year.",
    "Our subscriber numbers rose again, and customers are staying with us for longer.",
    "Operating margin improved by two points thanks to lower network costs.",
    "Our cloud platform now serves two thousand customers across forty countries.",
    "We returned three hundred million dollars to shareholders through buybacks.",
    "Looking ahead, we expect growth to continue through the rest of the year.",
    "Capital spending will be slightly higher as we expand our data centers.",
    "Thank you for your attention. Operator, we are ready for the first question.",
    "Could you say more about pricing in the enterprise business?",
    "Certainly. Prices held steady, and demand from large companies was strong.",
]


def speak(text: str, workdir: Path) -> npt.NDArray[np.int16]:
    raw, narrow = workdir / "raw.wav", workdir / "narrow.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-b", "16", "-c", "1", str(narrow)], check=True
    )
    with wave.open(str(narrow), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="times the script is read out")
    parser.add_argument("--engine", action="append", help="engine to run (default: all installed)")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        print("needs espeak-ng and sox (apt-get install espeak-ng sox)", file=sys.stderr)
        return 1
    gap = np.zeros(RATE, dtype=np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        spoken = [speak(sentence, Path(tmp)) for sentence in SENTENCES]
    audio = np.concatenate([piece for voice in spoken for piece in (voice, gap)] * args.repeat)
    reference = " ".join(SENTENCES * args.repeat)
    seconds = len(audio) / RATE
    regions = speech_regions(audio, RATE)
    print(f"{seconds:.0f} s of 8 kHz espeak-ng speech, {len(regions)} speech regions")
    print(f"machine: {os.cpu_count()} cores; onnxruntime uses at most 2 threads")
    print(f"{'engine':<14}{'load s':>8}{'RTF':>8}{'WER':>8}{'WER (digits as words)':>24}")
    for name in args.engine or available_engines():
        started = time.perf_counter()
        engine = get_engine(name)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        texts = [engine.transcribe(audio[a:b], RATE) for a, b in regions]
        elapsed = time.perf_counter() - started
        hypothesis = " ".join(s.text for found in texts for s in found)
        print(
            f"{name:<14}{loaded:>8.2f}{elapsed / seconds:>8.3f}"
            f"{word_error_rate(reference, hypothesis):>8.3f}"
            f"{word_error_rate(reference, hypothesis, numbers=True):>24.3f}"
        )
    print(f"reproduce: .venv/bin/python bench/transcript_bench.py --repeat {args.repeat}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
