"""A real human voice on the telephone band, for the transcript benchmark.

Debian's ``asterisk-core-sounds-en-wav`` holds the professional prompts
Asterisk plays (8 kHz, 16-bit WAV, one speaker, CC-BY-SA-3.0), and
``asterisk-core-sounds-en`` their transcripts (``core-sounds-en.txt.gz``).
Both are installed by ``scripts/install-system bench``.

* ``prompts``: every prompt with a transcript of three words or more (the
  bracketed ones are tones, not speech, and the parenthesised notes in
  others, "(10 seconds of silence)", are not said), for a word error rate
  on real human telephone speech.
* ``figure_reading``: earnings figures said in that voice, built from its
  recorded number words ("forty" "two" "million" "dollars", "sixty" "one"
  "percent"), read one after another with a pause between them, as a
  speaker reads out a results table. Each figure is what an analyst would
  write ("$42 million", "61%"). Each recorded word is trimmed of the
  silence around it (the files hold up to half a second each side) and the
  words of one figure follow each other a moment apart, as said.
"""

from __future__ import annotations

import gzip
import random
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
RATE = 8000

_TENS = {20: "20", 30: "30", 40: "40", 50: "50", 60: "60", 70: "70", 80: "80", 90: "90"}


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str  # as said (``said_as``)
    samples: npt.NDArray[np.int16]
    written: str = ""  # as the transcripts file writes it


def available() -> bool:
    return TRANSCRIPTS.is_file() and (SOUNDS / "digits" / "40.wav").is_file()


def _read(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path), "rb") as wav:
        if wav.getframerate() != RATE or wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path}: not 8 kHz 16-bit mono")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def _trimmed(samples: npt.NDArray[np.int16], keep_s: float = 0.02) -> npt.NDArray[np.int16]:
    """``samples`` without the silence before and after the word (20 ms kept each side)."""
    frame = RATE // 100
    levels = [
        float(np.sqrt(np.mean(samples[i : i + frame].astype(np.float64) ** 2)) + 1e-9)
        for i in range(0, len(samples) - frame + 1, frame)
    ]
    if not levels:
        return samples
    threshold = max(levels) / 30  # about 30 dB below the word's loudest 10 ms
    loud = [i for i, level in enumerate(levels) if level >= threshold]
    keep = round(keep_s * RATE)
    start = max(0, loud[0] * frame - keep)
    end = min(len(samples), (loud[-1] + 1) * frame + keep)
    return samples[start:end]


# The transcripts write the keys as symbols; the voice says their names.
_KEYS = {"#": " pound ", "*": " star "}
# Misspellings in the transcripts file (the recordings say the words).
ERRATA = {
    "un-indentified": "unidentified",
    "witheld": "withheld",
    "represenatives": "representatives",
    "umute": "unmute",
}


def said_as(text: str) -> str:
    """A transcript as the prompt says it: keys by name, the file's misspellings mended."""
    for key, name in _KEYS.items():
        text = text.replace(key, name)
    for wrong, right in ERRATA.items():
        text = re.sub(rf"\b{re.escape(wrong)}\b", right, text, flags=re.IGNORECASE)
    return " ".join(text.split())


def prompts(min_words: int = 3) -> list[Prompt]:
    """The prompts with a spoken transcript of ``min_words`` words or more, in file order."""
    found: list[Prompt] = []
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            match = re.match(r"^([\w/\-]+): (.+)$", line.strip())
            if match is None:
                continue
            name, text = match.groups()
            # "(10 seconds of silence)", "(note: does not say "2")": notes, not speech.
            written = re.sub(r"\([^)]*\)", " ", text).strip()
            text = said_as(written)
            path = SOUNDS / f"{name}.wav"
            if text.startswith("[") or not path.is_file():
                continue
            if len(re.findall(r"[A-Za-z0-9']+", text)) < min_words:
                continue
            found.append(Prompt(name, text, _read(path), written))
    return found


def _word_files(value: int) -> list[str]:
    """The recorded words that say ``value`` (1 to 999): "4 hundred 20 7"."""
    files: list[str] = []
    hundreds, rest = divmod(value, 100)
    if hundreds:
        files += [str(hundreds), "hundred"]
    if rest >= 20:
        tens, units = divmod(rest, 10)
        files.append(_TENS[tens * 10])
        if units:
            files.append(str(units))
    elif rest:
        files.append(str(rest))
    return [f"digits/{name}" for name in files]


def _figure(rng: random.Random) -> tuple[list[str], str]:
    """One earnings figure: the recorded words that say it, and how an analyst writes it."""
    kind = rng.choice(["money", "money", "percent", "count"])
    if kind == "percent":
        value = rng.randint(2, 99)
        return [*_word_files(value), "letters/ascii37"], f"{value}%"
    if kind == "count":
        value = rng.randint(11, 99)
        return [*_word_files(value), "digits/thousand"], f"{value},000"
    value = rng.randint(2, 999)
    scale = rng.choice(["million", "million", "billion"])
    return [*_word_files(value), f"digits/{scale}", "digits/dollars"], f"${value} {scale}"


def figure_reading(
    count: int = 40, pause_s: float = 0.6, word_gap_s: float = 0.05, seed: int = 26
) -> tuple[npt.NDArray[np.int16], list[str]]:
    """``count`` figures said one after another, ``pause_s`` apart (their words
    ``word_gap_s`` apart); and the figures written."""
    rng = random.Random(seed)
    pause = np.zeros(round(pause_s * RATE), dtype=np.int16)
    gap = np.zeros(round(word_gap_s * RATE), dtype=np.int16)
    parts: list[npt.NDArray[np.int16]] = []
    written: list[str] = []
    for _ in range(count):
        words, figure = _figure(rng)
        for word in words:
            parts += [_trimmed(_read(SOUNDS / f"{word}.wav")), gap]
        parts.append(pause)
        written.append(figure)
    return np.concatenate(parts), written
