#!/usr/bin/env python3
"""Transcript benchmark: figure recall, sentences dropped, WER on real speech, real-time factor.

Everything goes through G.711 μ-law at 8 kHz first, as a caller's voice
reaches the bridge, and is transcribed as ``transcribe_recording`` does it
(``transcribe_samples``: VAD, checked pieces, figures, glossary).

* **Earnings script**: sentences of our own full of figures, read in several
  voices and speeds with 0.4 s pauses between sentences (one VAD region, as a
  speaker reading a statement). *Figure recall* is the share of the script's
  figures found written as an analyst writes them ("$42 million", "12%",
  "$0.31", "Q3 2026", "fiscal 2027") in the transcript; a sentence is
  *dropped* when over half its words are missing from the transcript.
  Two families of voices, each with its own figure: Flite's (Debian ``flite``:
  voices made from recordings of a speaker, nearest a person on a call of
  what Debian ships) and espeak-ng's formant voices. Moonshine hears the
  espeak-ng voices well at 16 kHz but not through the 8 kHz line: their
  fricatives ("fifty"/"sixty", "seven", "cents", "billion") are synthesised
  mostly above 4 kHz, which the phone cuts (μ-law itself costs nothing: 8 kHz
  linear PCM gives the same transcript). ``--wideband`` shows that control.
  MBROLA's voices, which espeak-ng can drive, are not in Debian 12.
* **Real speech**: the LibriVox clips with reference transcripts in Debian's
  ``pocketsphinx-testdata`` (``scripts/install-system bench``); word error rate.
* **A human voice on the telephone band** (``asterisk_speech``): Asterisk's
  recorded prompts (8 kHz, a professional speaker) with their transcripts,
  word error rate over every prompt of three words or more and over those
  that say digits; and earnings figures said in that voice, built from its
  recorded number words and read out one after another: figure recall.
* **Real-time factor**: transcription wall time over audio time, all runs.

    .venv/bin/python bench/transcript_bench.py            # about 5 minutes of audio
    .venv/bin/python bench/transcript_bench.py --quick    # two voices, a minute or so
    .venv/bin/python bench/transcript_bench.py --human    # the Asterisk voice and LibriVox only
    .venv/bin/python bench/transcript_bench.py --synthetic  # Flite, espeak-ng and LibriVox only
    .venv/bin/python bench/transcript_bench.py --hd       # HD voice: espeak-ng through μ-law
                                                          # at 8 kHz, in the 16 kHz mix, G.722

Goals (issue 16): figure recall ≥ 0.95, no sentence dropped, WER ≤ 0.05 on the
real speech, real-time factor ≤ 0.25. Issue 26: WER ≤ 0.03 on the Asterisk
prompts, figure recall ≥ 0.95 on the human figure reading, CPU ≤ 0.25 s per
audio second. It prints its figures and the command that reproduces them.
Needs espeak-ng, flite and sox (``scripts/install-system bench``).

Issue 26's pieces (``pieces.plan_joined``: up to 20 s, cut at the longest
pauses, no lone short piece), before → after, Moonshine base, one core
(``taskset -c 1``) of a shared 2-core machine:

    Asterisk prompts WER (269)   0.038 → 0.035   digits (53) 0.041 → 0.032
    human figure recall          0.750 → 1.000   (30/40 → 40/40)
    Flite figure recall          0.935 → 0.963   sentences dropped 0 → 0
    espeak-ng figure recall      0.567 → 0.644   sentences dropped 0 → 0 (a stress figure)
    LibriVox WER                 0.042 → 0.042
    CPU s per audio s            0.101 → 0.103 (--human), 0.101 → 0.107 (--synthetic)

Then pieces cut inside speech read 1.2 s into each other and joined where the
readings agree (``transcript.junction``; ``--overlap 0`` turns it off), and a
human figure reading with no pause of 0.3 s between its figures (132 s, one
stretch of speech): recall 0.925 → 0.975 (--overlap 0 → 1.2); the prompts'
WER moves by a word either way (104 → 106 errors of 2959, on the long prompts
only). The prompts' WER is scored as NIST's scoring tool scores it
(``wer.word_errors``: "I'm" is "I am", "mail box" is "mailbox" where the
other text writes it) against the prompts as said ("#" is "pound", four
misspellings in the file mended, ``asterisk_speech.said_as``): 0.025 (digits
0.027); scored strictly as before, 0.036.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
import wave
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asterisk_speech
from tests.transcript.speech import speak, speak_flite, through_phone

from callbridge.dsp.resample import Resampler
from callbridge.rtp import codecs
from callbridge.transcript.engine import (
    SpeechEngine,
    available_engines,
    get_engine,
    resample,
)
from callbridge.transcript.figures import write_figures
from callbridge.transcript.pieces import INAUDIBLE, PieceConfig
from callbridge.transcript.transcribe import transcribe_samples
from callbridge.transcript.vad import to_float
from callbridge.transcript.wer import normalise, word_errors

RATE = 8000
PAUSE_S = 0.4
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
# How speech is cut into pieces (``--overlap`` changes it, to compare).
PIECES = PieceConfig()

# (what is said, the figures an analyst would write for it)
SCRIPT: list[tuple[str, list[str]]] = [
    (
        "Good afternoon, and welcome to the Northwind Biologics earnings call "
        "for the third quarter of twenty twenty six.",
        ["Q3 2026"],
    ),
    (
        "Revenue grew to forty two million dollars, up twelve percent year over year.",
        ["$42 million", "12%"],
    ),
    (
        "Gross margin was sixty one point four percent, compared with fifty eight "
        "point two percent a year ago.",
        ["61.4%", "58.2%"],
    ),
    ("Operating expenses were ninety four million dollars.", ["$94 million"]),
    ("Net loss per share was thirty one cents.", ["$0.31"]),
    (
        "We ended the quarter with four hundred twenty seven million dollars "
        "in cash and investments.",
        ["$427 million"],
    ),
    (
        "For fiscal twenty twenty seven, we expect revenue of eight hundred fifty "
        "to eight hundred seventy million dollars.",
        ["fiscal 2027", "$850 million", "$870 million"],
    ),
    (
        "Research and development spending rose nine percent to thirty three million dollars.",
        ["9%", "$33 million"],
    ),
    (
        "Earnings per share were fourteen cents in the second quarter of twenty twenty six.",
        ["$0.14", "Q2 2026"],
    ),
    ("We now serve fifteen thousand patients.", ["15,000"]),
    ("Free cash flow was five point five million dollars.", ["$5.5 million"]),
    (
        "Capital spending will be about one point two billion dollars over the plan.",
        ["$1.2 billion"],
    ),
    ("Thank you. Operator, we are ready for the first question.", []),
]


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker: ``synth`` ("flite" or "espeak-ng"), its voice, and how fast."""

    synth: str
    name: str
    speed: float  # espeak-ng: words per minute; flite: duration stretch (above 1: slower)

    def say(self, text: str, rate: int = RATE) -> npt.NDArray[np.int16]:
        """``text`` in this voice, 16-bit at ``rate``."""
        if self.synth == "flite":
            return speak_flite(text, self.name, self.speed, rate)
        return speak(text, ("-v", self.name, "-s", str(round(self.speed))), rate)

    @property
    def label(self) -> str:
        pace = f"×{self.speed:.2f}" if self.synth == "flite" else f"{self.speed:.0f} wpm"
        return f"{self.synth:<9} {self.name:<11}{pace:>8}"


FLITE_VOICES = [
    Voice("flite", "slt", 1.0),  # US English, woman
    Voice("flite", "rms", 1.0),  # US English, man
    Voice("flite", "awb", 1.0),  # Scottish English, man
    Voice("flite", "kal16", 1.0),  # US English, man (diphones)
    Voice("flite", "slt", 0.85),  # faster
    Voice("flite", "rms", 1.15),  # slower
]
ESPEAK_VOICES = [
    Voice("espeak-ng", "en-gb-x-rp", 150),
    Voice("espeak-ng", "en", 165),
    Voice("espeak-ng", "en-us", 150),
    Voice("espeak-ng", "en-gb-x-rp", 185),
    Voice("espeak-ng", "en-us+f3", 140),
]


@dataclass
class Tally:
    """What one kind of audio came to."""

    audio_s: float = 0.0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time: fair even on a machine others are busy on
    figures: int = 0
    found: int = 0
    sentences: int = 0
    dropped: int = 0
    inaudible: int = 0


def figure_counts(text: str) -> Counter[str]:
    """How often each written figure ("$42 million", "12%", "Q3 2026") stands in ``text``."""
    pattern = re.compile(
        r"\$\d[\d,]*(?:\.\d+)?(?: (?:thousand|million|billion))?|\d[\d,]*(?:\.\d+)?%"
        r"|Q[1-4] \d{4}|fiscal \d{4}|\b\d{1,3}(?:,\d{3})+\b"
    )
    return Counter(match.group(0) for match in pattern.finditer(text))


def deleted_words(reference: list[str], hypothesis: list[str]) -> list[bool]:
    """For each reference word, whether a minimum-edit alignment leaves it out of ``hypothesis``."""
    rows, cols = len(reference), len(hypothesis)
    cost = np.zeros((rows + 1, cols + 1), dtype=np.int32)
    cost[:, 0] = np.arange(rows + 1)
    cost[0, :] = np.arange(cols + 1)
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            same = reference[i - 1] == hypothesis[j - 1]
            cost[i, j] = min(
                cost[i - 1, j - 1] + (0 if same else 1), cost[i - 1, j] + 1, cost[i, j - 1] + 1
            )
    deleted = [False] * rows
    i, j = rows, cols
    while i > 0:
        same = j > 0 and reference[i - 1] == hypothesis[j - 1]
        if j > 0 and cost[i, j] == cost[i - 1, j - 1] + (0 if same else 1):
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            deleted[i - 1] = True
            i -= 1
        else:
            j -= 1
    return deleted


def through_g722(samples: npt.NDArray[np.int16], codec: str = "G722") -> npt.NDArray[np.int16]:
    """16 kHz ``samples`` as an HD caller's audio reaches the mix: G.722, encoded and decoded."""
    encoder, decoder = codecs.encoder(codec), codecs.decoder(codec)
    padded = np.concatenate([samples, np.zeros(-len(samples) % 320, np.int16)])
    frames = [decoder.decode(encoder.encode(frame)) for frame in padded.reshape(-1, 320)]
    return np.concatenate([f for f in frames if f is not None])[: len(samples)]


def phone_in_the_mix(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """8 kHz ``samples`` through μ-law and brought up to the 16 kHz mix, as a phone caller's."""
    return Resampler(RATE, RATE * 2).process(through_phone(samples))


# How the script reaches the transcript: (rate it is spoken at, the line, the rate
# the transcript gets, its label).
LINES = {
    "phone": (RATE, through_phone, RATE, "μ-law 8 kHz"),
    "none": (RATE * 2, None, RATE * 2, "16 kHz, no phone line"),
    "g722": (RATE * 2, through_g722, RATE * 2, "G.722 16 kHz"),
    "opus": (RATE * 2, lambda s: through_g722(s, "opus"), RATE * 2, "Opus 16 kHz, 32 kbit/s"),
    "phone16": (RATE, phone_in_the_mix, RATE * 2, "μ-law in the 16 kHz mix"),
}


def read_script(
    engine: SpeechEngine, voice: Voice, tally: Tally, wideband: bool = False, line: str = "phone"
) -> str:
    """The script read in ``voice``, through the phone line, transcribed; the tally updated.

    ``wideband``: at 16 kHz without the phone line instead (the control); ``line``
    another way in (``LINES``: an HD caller on G.722, a phone caller in the 16 kHz mix).
    """
    spoken_rate, through, rate, where = LINES["none" if wideband else line]
    pause = np.zeros(round(PAUSE_S * spoken_rate), dtype=np.int16)
    spoken = [voice.say(text, spoken_rate) for text, _ in SCRIPT]
    audio = np.concatenate([part for said in spoken for part in (said, pause)])
    if through is not None:
        audio = through(audio)
    started, cpu = time.perf_counter(), time.process_time()
    segments = transcribe_samples(engine, audio, rate, config=PIECES)
    tally.elapsed_s += time.perf_counter() - started
    tally.cpu_s += time.process_time() - cpu
    tally.audio_s += len(audio) / rate
    text = " ".join(s.text for s in segments)
    tally.inaudible += sum(s.text == INAUDIBLE for s in segments)
    wanted = Counter(figure for _, figures in SCRIPT for figure in figures)
    got = figure_counts(text)
    found = sum(min(count, got[figure]) for figure, count in wanted.items())
    tally.figures += sum(wanted.values())
    tally.found += found
    # Sentences dropped: align the whole script's words with the transcript's.
    words = [normalise(said, numbers=True) for said, _ in SCRIPT]
    deleted = deleted_words([w for sentence in words for w in sentence], spoken_form(text))
    at = 0
    for sentence in words:
        gone = sum(deleted[at : at + len(sentence)])
        at += len(sentence)
        tally.sentences += 1
        tally.dropped += gone * 2 > len(sentence)
    missing = sorted((wanted - got).elements())
    print(
        f"  {voice.label}  {where}  {found}/{sum(wanted.values())}"
        f"  missed: {', '.join(missing) or 'none'}"
    )
    return text


def spoken_form(text: str) -> list[str]:
    """Transcript words as said: "$42 million" → "forty two million dollars"."""
    text = re.sub(r"\$([\d.,]+(?: (?:thousand|million|billion))?)", r"\1 dollars", text)
    return normalise(text.replace(INAUDIBLE, " "), numbers=True)


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
        return data, wav.getframerate()


def real_speech(engine: SpeechEngine, tally: Tally) -> tuple[float, int] | None:
    """WER of the LibriVox clips sent through the phone line, and their word count."""
    transcription = LIBRIVOX / "transcription"
    if not transcription.is_file():
        return None
    references: list[str] = []
    hypotheses: list[str] = []
    for line in transcription.read_text().splitlines():
        match = re.fullmatch(r"<s> (.*) </s> \((\S+)\)", line.strip())
        if not match:
            continue
        samples, rate = read_wav(LIBRIVOX / f"{match.group(2)}.wav")
        narrow = resample(to_float(samples), rate, RATE)
        pcm = np.clip(np.round(narrow * 32768.0), -32768, 32767).astype(np.int16)
        audio = through_phone(pcm)
        started, cpu = time.perf_counter(), time.process_time()
        segments = transcribe_samples(engine, audio, RATE, config=PIECES)
        tally.elapsed_s += time.perf_counter() - started
        tally.cpu_s += time.process_time() - cpu
        tally.audio_s += len(audio) / RATE
        references.append(match.group(1))
        hypotheses.append(" ".join(s.text for s in segments))
    result = word_errors(" ".join(references), " ".join(hypotheses), numbers=True)
    return result.wer, result.reference_words


def human_voice(engine: SpeechEngine, tally: Tally) -> None:
    """The Asterisk voice: WER over its prompts (all, and those with digits) and figure
    recall over a reading of figures in its recorded number words, through μ-law."""
    if not asterisk_speech.available():
        print("human telephone voice not measured: scripts/install-system bench")
        return

    def heard(samples: npt.NDArray[np.int16]) -> str:
        audio = through_phone(samples)
        started, cpu = time.perf_counter(), time.process_time()
        segments = transcribe_samples(engine, audio, RATE, config=PIECES)
        tally.elapsed_s += time.perf_counter() - started
        tally.cpu_s += time.process_time() - cpu
        tally.audio_s += len(audio) / RATE
        return " ".join(s.text for s in segments)

    prompts = asterisk_speech.prompts()
    said = [(prompt.text, heard(prompt.samples)) for prompt in prompts]
    every = word_errors(" ".join(r for r, _ in said), " ".join(h for _, h in said), numbers=True)
    # As scored before: the file's own text, keys as symbols, no contraction or compound.
    strict = word_errors(
        " ".join(p.written for p in prompts),
        " ".join(h for _, h in said),
        numbers=True,
        strict=True,
    )
    digits = [(r, h) for r, h in said if re.search(r"\d", r)]
    with_digits = word_errors(
        " ".join(r for r, _ in digits), " ".join(h for _, h in digits), numbers=True
    )
    audio, written = asterisk_speech.figure_reading()
    text = heard(audio)
    wanted, got = Counter(written), figure_counts(text)
    found = sum(min(count, got[figure]) for figure, count in wanted.items())
    # The same voice without a pause of 0.3 s between figures: one stretch of
    # speech, cut wherever a piece is full and read across each cut (overlap).
    run, run_written = asterisk_speech.figure_reading(pause_s=0.15, seed=27)
    run_got = figure_counts(heard(run))
    run_found = sum(min(count, run_got[f]) for f, count in Counter(run_written).items())
    print(
        f"WER human voice      {every.wer:.3f}  ({len(said)} Asterisk prompts,"
        f" {every.reference_words} words, μ-law 8 kHz)   goal ≤ 0.03"
    )
    print(f"  the {len(digits)} that say digits: {with_digits.wer:.3f}")
    print(
        f'  scored strictly (the file\'s text as written, "#" and "*" not said,'
        f" its typos, I'm ≠ I am, mailbox ≠ mail box): {strict.wer:.3f}"
    )
    print(
        f"figure recall, human {found / len(written):.3f}  ({found}/{len(written)} figures"
        f" read out in the Asterisk voice)   goal ≥ 0.95"
    )
    missing = sorted((wanted - got).elements())
    print(f"  missed: {', '.join(missing) or 'none'}")
    print(
        f"  without pauses:     {run_found / len(run_written):.3f}  ({run_found}/"
        f"{len(run_written)}, {len(run) / RATE:.0f} s with no pause of 0.3 s,"
        f" pieces read {PIECES.overlap_s:.1f} s into each other)"
    )


def hd_voice(engine_name: str | None) -> int:
    """Figure recall of the espeak-ng voices as a phone and as an HD caller reach the transcript."""
    name = engine_name or available_engines()[0]
    engine = get_engine(name)
    print(f"engine {name}; {len(ESPEAK_VOICES)} espeak-ng voices, {len(SCRIPT)} sentences")
    tallies = {line: Tally() for line in ("phone", "phone16", "g722", "opus", "none")}
    for line, tally in tallies.items():
        for voice in ESPEAK_VOICES:
            read_script(engine, voice, tally, line=line)
    print()
    for line, tally in tallies.items():
        recall = tally.found / max(1, tally.figures)
        label = LINES[line][3]
        print(
            f"figure recall, espeak-ng, {label:<24} {recall:.3f}  ({tally.found}/{tally.figures})"
        )
    print("  reproduce: .venv/bin/python bench/transcript_bench.py --hd")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three voices only")
    parser.add_argument(
        "--human", action="store_true", help="real speech only: the Asterisk voice and LibriVox"
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="the synthetic voices and LibriVox only"
    )
    parser.add_argument("--engine", help="engine to run (default: the best installed)")
    parser.add_argument("--show", action="store_true", help="print each transcript")
    parser.add_argument(
        "--careful", action="store_true", help="read unsure pieces twice (get_engine(careful))"
    )
    parser.add_argument(
        "--wideband", action="store_true", help="also the espeak-ng voices at 16 kHz, no phone"
    )
    parser.add_argument(
        "--hd",
        action="store_true",
        help="only the espeak-ng voices: μ-law 8 kHz, in the 16 kHz mix, G.722, Opus, no line",
    )
    parser.add_argument(
        "--overlap",
        type=float,
        default=PieceConfig().overlap_s,
        help="seconds pieces cut inside speech are read into each other (0: not at all)",
    )
    args = parser.parse_args()
    global PIECES
    PIECES = PieceConfig(overlap_s=args.overlap)
    if args.hd:
        return hd_voice(args.engine)
    if not all(shutil.which(tool) for tool in ("espeak-ng", "flite", "sox")):
        print("needs espeak-ng, flite and sox (scripts/install-system bench)", file=sys.stderr)
        return 1
    name = args.engine or available_engines()[0]
    started = time.perf_counter()
    engine = get_engine(name, careful=args.careful)
    loaded = time.perf_counter() - started
    readings = "unsure pieces read twice" if args.careful else "one reading per piece"
    print(f"engine {name}, {readings} (loaded in {loaded:.1f} s); {os.cpu_count()} cores")
    families = {
        "flite": FLITE_VOICES[:2] if args.quick else FLITE_VOICES,
        "espeak-ng": ESPEAK_VOICES[:1] if args.quick else ESPEAK_VOICES,
    }
    if args.human:
        families = {}
    tallies = {family: Tally() for family in families}
    count = sum(len(voices) for voices in families.values())
    if count:
        print(f"earnings script: {len(SCRIPT)} sentences, {count} voices, through G.711 μ-law")
    for family, voices in families.items():
        for voice in voices:
            text = read_script(engine, voice, tallies[family])
            if args.show:
                print(f"    {text}")
    control = Tally()
    if args.wideband:
        for voice in families["espeak-ng"]:
            read_script(engine, voice, control, wideband=True)
    # The same measure on the script's own words: what the normaliser alone gets right.
    wanted = Counter(figure for _, figures in SCRIPT for figure in figures)
    written_out = figure_counts(" ".join(write_figures(said) for said, _ in SCRIPT))
    alone = sum(min(count, written_out[figure]) for figure, count in wanted.items())
    real = Tally()
    wer = real_speech(engine, real)
    human = Tally()
    if not args.quick and not args.synthetic:
        print()
        human_voice(engine, human)
    timed = [*tallies.values(), real, human]
    total_audio = sum(t.audio_s for t in timed)
    total_elapsed = sum(t.elapsed_s for t in timed)
    print()
    for family, tally in tallies.items():
        recall = tally.found / max(1, tally.figures)
        print(
            f"figure recall, {family:<9} {recall:.3f}  ({tally.found}/{tally.figures})"
            f"   goal ≥ 0.95; sentences dropped {tally.dropped} of {tally.sentences}"
        )
    if args.wideband:
        recall = control.found / max(1, control.figures)
        print(
            f"  espeak-ng at 16 kHz, no phone line: {recall:.3f}"
            f"  ({control.found}/{control.figures})"
        )
    print(f"  on the script's own words (normaliser alone): {alone / sum(wanted.values()):.3f}")
    print(f"[inaudible] marks    {sum(t.inaudible for t in tallies.values())}")
    if wer is None:
        print("WER real speech      not measured: apt-get install pocketsphinx-testdata")
    else:
        words = f"({wer[1]} words, LibriVox, μ-law 8 kHz)"
        print(f"WER real speech      {wer[0]:.3f}  {words}   goal ≤ 0.05")
    rtf = total_elapsed / max(total_audio, 1e-9)
    took = f"({total_elapsed:.0f} s for {total_audio:.0f} s)"
    print(f"real-time factor     {rtf:.3f}  {took}   goal ≤ 0.25")
    # ONNX Runtime runs on two threads: on an idle machine wall time is about CPU time / 2.
    cpu = sum(t.cpu_s for t in timed) / max(total_audio, 1e-9)
    load = os.getloadavg()[0]
    print(f"CPU s per audio s    {cpu:.3f}  (load average {load:.1f} on {os.cpu_count()} cores)")
    flags = "".join(
        f" --{flag.replace('_', '-')}"
        for flag in ("quick", "human", "synthetic", "careful", "wideband")
        if getattr(args, flag)
    )
    if args.overlap != PieceConfig().overlap_s:
        flags += f" --overlap {args.overlap}"
    print(f"reproduce: .venv/bin/python bench/transcript_bench.py{flags} --engine {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
