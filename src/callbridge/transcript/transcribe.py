"""The transcript of an assembled recording: per-speaker text, captions and search.

Call ``transcribe_recording`` after ``media.recording.assemble`` (off the event
loop: it takes a fraction of the call's length in CPU time). Each speaker stem
is transcribed on its own, so every segment knows who spoke; silence is skipped
by an energy detector before the engine sees it. The result is written next to
the recording::

    transcript.json    {"format", "engine", "duration_s", "elapsed_s", "real_time_factor",
                        "segments": [{"start", "end", "speaker", "text"}, …]}
    captions.vtt       WebVTT, cues of at most two lines and seven seconds
    transcript.txt     paragraphs by speaker turn, each led by its time and speaker
    transcript.html    the same as a standalone page an IR team can post
    transcript.docx    the same as a Word document (when python-docx is installed)

each atomically (``store.files.write_atomic``).
"""

from __future__ import annotations

import json
import logging
import time
import wave
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from callbridge.media.recording import MANIFEST, load_assembled
from callbridge.store.files import write_atomic
from callbridge.transcript import turns
from callbridge.transcript.engine import Segment, SpeechEngine, apply_glossary, get_engine
from callbridge.transcript.figures import continues_figure, figure_tail, write_figures
from callbridge.transcript.junction import Piece
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.pieces import INAUDIBLE, PieceConfig, PieceDecoder, joined
from callbridge.transcript.spread import LONGEST_SEGMENT_S
from callbridge.transcript.vad import Samples, VoiceProfile, regions_in, voice_profile
from callbridge.transcript.vtt import LINE_CHARS, MAX_CUE_S, MAX_LINES, Cue, write_vtt

log = logging.getLogger(__name__)

TRANSCRIPT = "transcript.json"
CAPTIONS = "captions.vtt"

Progress = Callable[[float], None]


class TranscriptError(RuntimeError):
    """A directory with nothing to transcribe (no recording.wav and no stem)."""


# -- reading the recording ---------------------------------------------------


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    """Mono 16-bit samples and the sample rate of a PCM WAV (the recorder writes only these)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise TranscriptError(f"{path}: not 16-bit PCM")
        channels = wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
        rate = wav.getframerate()
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


@dataclass(frozen=True)
class _Source:
    path: Path
    keys: tuple[str, ...]  # participant id and stem name, for looking up a name
    name: str | None


def _sources(directory: Path, speaker_names: Mapping[str, str]) -> list[_Source]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        participants = manifest.get("participants", {}) if isinstance(manifest, dict) else {}
    except (OSError, ValueError):
        participants = {}
    by_stem: dict[str, tuple[str, dict[str, Any]]] = {
        str(entry["stem"]): (str(pid), entry)
        for pid, entry in participants.items()
        if isinstance(entry, dict) and "stem" in entry
    }
    assembled = load_assembled(directory)
    if assembled is not None:
        stem_paths = sorted(assembled.stems.values())
    else:
        stem_paths = sorted((directory / "stems").glob("*.wav"))
    sources = []
    for path in stem_paths:
        if not path.is_file():
            continue
        stem = path.stem
        pid, entry = by_stem.get(stem, (stem, {}))
        name = speaker_names.get(pid) or speaker_names.get(stem)
        if not name and isinstance(entry.get("display_name"), str):
            name = entry["display_name"].strip() or None
        sources.append(_Source(path, (pid, stem), name))
    return sources


# -- transcribing ------------------------------------------------------------------


def transcribe_recording(
    directory: Path,
    *,
    engine: str | SpeechEngine | None = None,
    glossary: Sequence[str] = (),
    speaker_names: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    qa_start: float | None = None,
) -> Transcript:
    """Transcribe the recording in ``directory`` and write transcript.json and captions.vtt.

    ``engine`` is an engine name (None: the best installed) or an engine object
    to reuse. ``speaker_names`` maps participant ids or stem names ("s001") to
    labels and wins over the manifest's ``display_name``; speakers without a
    name are "Speaker 1", "Speaker 2"… in order of first speech. Without stems
    the mix is transcribed and segments have no speaker. ``progress`` gets the
    fraction done, 0..1. ``qa_start`` is where the question-and-answer
    session starts, in seconds (``qa_start_in``). Raises ``TranscriptError``
    when there is no audio and ``EngineUnavailable`` when the engine cannot
    be loaded.
    """
    directory = Path(directory)
    started = time.perf_counter()
    recognizer = (
        engine if engine is not None and not isinstance(engine, str) else get_engine(engine)
    )
    sources = _sources(directory, speaker_names or {})
    mix = directory / "recording.wav"
    if not sources:
        if not mix.is_file():
            raise TranscriptError(f"{directory} has no recording.wav and no stems")
        sources = [_Source(mix, (), None)]
        labelled = False
    else:
        labelled = True

    audio = [read_wav(source.path) for source in sources]
    duration = max((len(samples) / rate for samples, rate in audio), default=0.0)
    profiles = [voice_profile(samples, rate) for samples, rate in audio]
    sizes = [
        sum(end - start for start, end in regions_in(profile, len(samples)))
        for (samples, _), profile in zip(audio, profiles, strict=True)
    ]
    total = sum(sizes) or 1
    done = 0

    def report(fraction: float, size: int) -> None:
        if progress is not None:
            progress(min(1.0, (done + fraction * size) / total))

    spoken: list[list[Segment]] = []
    for (samples, rate), profile, size in zip(audio, profiles, sizes, strict=True):
        spoken.append(
            transcribe_samples(
                recognizer,
                samples,
                rate,
                glossary,
                lambda fraction, size=size: report(fraction, size),  # type: ignore[misc]
                profile=profile,
            )
        )
        done += size

    labels = _labels(sources, spoken) if labelled else [None] * len(sources)
    segments = sorted(
        (
            TranscriptSegment(round(s.start, 3), round(s.end, 3), label, s.text)
            for label, found in zip(labels, spoken, strict=True)
            for s in found
            if s.text.strip()
        ),
        key=lambda s: (s.start, s.end),
    )
    transcript = Transcript(
        segments=segments,
        engine=recognizer.name,
        duration_s=duration,
        elapsed_s=time.perf_counter() - started,
        glossary=[t for t in glossary if t.strip()],
        qa_start=qa_start,
    )
    write_transcript(directory, transcript)
    if progress is not None:
        progress(1.0)
    return transcript


def transcribe_samples(
    recognizer: SpeechEngine,
    samples: Samples,
    rate: int,
    glossary: Sequence[str] = (),
    progress: Progress | None = None,
    *,
    profile: VoiceProfile | None = None,
    config: PieceConfig | None = None,
) -> list[Segment]:
    """Timed text for one speaker's samples: what ``transcribe_recording`` does per stem.

    Silence is skipped, speech decoded in long checked pieces (``pieces``), speech
    that gave no text kept as "[inaudible]", figures written as figures and
    the glossary applied last. ``progress`` gets the fraction of speech done.
    """
    profile = profile or voice_profile(samples, rate)
    regions = regions_in(profile, len(samples))
    config = config or PieceConfig()

    def decode(piece: Piece) -> list[Segment]:
        audio = joined(samples, piece, rate, config.join_gap_s)
        return recognizer.transcribe(audio, rate, glossary)

    found = PieceDecoder(profile, rate, decode, config).regions(regions, progress)
    return [Segment(s.start, s.end, written(s.text, glossary)) for s in whole_figures(found)]


# Segments further apart than this are never one figure.
FIGURE_GAP_S = 1.0


def whole_figures(segments: list[Segment]) -> list[Segment]:
    """Segments with a figure split between them ("Six hundred." "Seventy seven." "Million
    dollars.") made one, so it is written as one ("$677 million").

    Where the two together would be longer than ``LONGEST_SEGMENT_S``, the
    figure's first words move to the next segment instead ("Revenue was two
    hundred" | "eighteen million dollars up…" becomes "Revenue was" | "two
    hundred eighteen million dollars up…"), with their share of the time.
    """
    joined: list[Segment] = []
    for segment in segments:
        while (
            joined
            and segment.start - joined[-1].end <= FIGURE_GAP_S
            and continues_figure(joined[-1].text, segment.text)
        ):
            before = joined.pop()
            head = before.text.rstrip(" .,;")
            if segment.end - before.start > LONGEST_SEGMENT_S and 0 < (
                cut := figure_tail(head)
            ) < len(head):
                share = cut / max(1, len(head))
                at = before.start + share * (before.end - before.start)
                joined.append(Segment(before.start, at, head[:cut].rstrip()))
                segment = Segment(at, segment.end, f"{head[cut:]} {segment.text.lstrip()}")
                break
            segment = Segment(before.start, segment.end, f"{head} {segment.text.lstrip()}")
        joined.append(segment)
    return joined


def written(text: str, glossary: Sequence[str] = ()) -> str:
    """Engine text as a transcript shows it: figures as figures, then the glossary's spellings."""
    if text == INAUDIBLE:
        return text
    return apply_glossary(write_figures(text), glossary)


def _labels(sources: list[_Source], spoken: list[list[Segment]]) -> list[str | None]:
    """Each source's name, or "Speaker N" numbered by when the unnamed ones first spoke."""
    first = [min((s.start for s in found), default=float("inf")) for found in spoken]
    order = sorted(range(len(sources)), key=lambda i: (first[i], i))
    labels: list[str | None] = [source.name for source in sources]
    taken = {name for name in labels if name}
    number = 0
    for index in order:
        if labels[index]:
            continue
        number += 1
        while f"Speaker {number}" in taken:
            number += 1
        labels[index] = f"Speaker {number}"
    return labels


def write_transcript(directory: Path, transcript: Transcript) -> None:
    """transcript.json, captions.vtt, .txt, .html and .docx, each atomically.

    Without python-docx the Word document is left out (and logged).
    """
    data = json.dumps(transcript.to_json(), indent=2, ensure_ascii=False) + "\n"
    write_atomic(directory / TRANSCRIPT, data.encode())
    write_atomic(directory / CAPTIONS, write_vtt(caption_cues(transcript)).encode())
    write_atomic(directory / turns.TEXT, turns.as_text(transcript).encode())
    write_atomic(directory / turns.HTML, turns.as_html(transcript).encode())
    try:
        document = turns.as_docx(transcript)
    except ImportError:
        log.warning("python-docx is not installed: no %s in %s", turns.DOCX, directory)
    else:
        write_atomic(directory / turns.DOCX, document)


def qa_start_in(directory: Path, lines_opened: Sequence[datetime]) -> float | None:
    """Seconds into the recording in ``directory`` when the first of ``lines_opened`` was.

    ``lines_opened`` are the call log's "line_open" times (UTC); the recording
    starts at its manifest's ``started_at``. None when no line was opened
    while the recording ran, or the manifest has no start.
    """
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_text())
        started = datetime.fromisoformat(str(manifest["started_at"]).replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    after = [(at - started).total_seconds() for at in lines_opened if at >= started]
    return min(after) if after else None


def load_transcript(directory: Path) -> Transcript | None:
    """The transcript written for ``directory``, or None if there is none (or it is unreadable)."""
    try:
        return Transcript.from_json(json.loads((Path(directory) / TRANSCRIPT).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- captions --------------------------------------------------------------------


def caption_cues(
    transcript: Transcript,
    max_chars: int = LINE_CHARS * MAX_LINES,
    max_seconds: float = MAX_CUE_S,
) -> list[Cue]:
    """Segments cut into cues of at most ``max_chars`` and ``max_seconds``.

    A segment's time is shared among its words by their length (engines that
    give one time per phrase give no better), so cue boundaries fall between words.
    """
    cues: list[Cue] = []
    for segment in transcript.segments:
        words = segment.text.split()
        if not words:
            continue
        span = max(segment.end - segment.start, 0.001)
        weights = [len(word) + 1 for word in words]
        per_weight = span / sum(weights)
        groups: list[list[int]] = [[]]
        chars = 0
        for index, word in enumerate(words):
            group = groups[-1]
            group_start = sum(weights[: group[0]]) * per_weight if group else 0.0
            word_end = sum(weights[: index + 1]) * per_weight
            if group and (
                chars + 1 + len(word) > max_chars or word_end - group_start > max_seconds
            ):
                groups.append([])
                chars = 0
            groups[-1].append(index)
            chars += len(word) + (1 if chars else 0)
        for group in groups:
            start = segment.start + sum(weights[: group[0]]) * per_weight
            end = segment.start + sum(weights[: group[-1] + 1]) * per_weight
            cues.append(
                Cue(
                    round(start, 3),
                    round(end, 3),
                    " ".join(words[i] for i in group),
                    segment.speaker,
                )
            )
    return cues
