"""A transcript as data: its segments, its JSON form (``transcript.json``) and search.

The types every part of the transcript shares (the offline pass that writes
it, ``turns`` that lays it out, the web app and the live captions that search
it), kept apart from the transcription itself so none of them imports the
engine, and so ``transcribe`` and ``turns`` need not import each other.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1
MAX_QUERY_CHARS = 200
MAX_HITS = 1000


@dataclass(frozen=True)
class TranscriptSegment:
    """What one speaker said between ``start`` and ``end`` seconds of recording.wav."""

    start: float
    end: float
    speaker: str | None
    text: str


@dataclass(frozen=True)
class Transcript:
    """A recording's transcript, as written to ``transcript.json``."""

    segments: list[TranscriptSegment]
    engine: str
    duration_s: float
    elapsed_s: float
    glossary: list[str] = field(default_factory=list)
    # Seconds into the recording when the first analyst's line was opened (the call log's
    # first "line_open"): where the question-and-answer session starts. None: not known.
    qa_start: float | None = None

    @property
    def real_time_factor(self) -> float:
        """Seconds of CPU wall time per second of recording (below 1: faster than real time)."""
        return self.elapsed_s / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "engine": self.engine,
            "duration_s": round(self.duration_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "real_time_factor": round(self.real_time_factor, 4),
            "glossary": list(self.glossary),
            "qa_start": None if self.qa_start is None else round(self.qa_start, 3),
            "segments": [
                {
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "speaker": s.speaker,
                    "text": s.text,
                }
                for s in self.segments
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transcript:
        return cls(
            segments=[
                TranscriptSegment(
                    float(s["start"]),
                    float(s["end"]),
                    None if s["speaker"] is None else str(s["speaker"]),
                    str(s["text"]),
                )
                for s in data["segments"]
            ],
            engine=str(data["engine"]),
            duration_s=float(data["duration_s"]),
            elapsed_s=float(data["elapsed_s"]),
            glossary=[str(t) for t in data.get("glossary", [])],
            qa_start=None if data.get("qa_start") is None else float(data["qa_start"]),
        )


# -- search ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """A segment that contains the query; ``spans`` are (start, end) offsets into ``text``."""

    segment: int
    start: float
    speaker: str | None
    text: str
    spans: tuple[tuple[int, int], ...]

    def marked(self, open_tag: str = "<mark>", close_tag: str = "</mark>") -> str:
        """``text`` HTML-escaped with each match wrapped in ``<mark>``: safe to put in a page."""
        parts: list[str] = []
        at = 0
        for start, end in self.spans:
            parts.append(html.escape(self.text[at:start]))
            parts.append(open_tag + html.escape(self.text[start:end]) + close_tag)
            at = end
        parts.append(html.escape(self.text[at:]))
        return "".join(parts)


def query_pattern(query: str) -> re.Pattern[str] | None:
    """Whole words of ``query`` in order, any punctuation or spacing between them, any case."""
    words = re.findall(r"\w+", query[:MAX_QUERY_CHARS])
    if not words:
        return None
    body = r"[\W_]+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def search(transcript: Transcript, query: str) -> list[Hit]:
    """Segments containing ``query`` as whole words (a phrase: words in order), in time order.

    Case and punctuation are ignored: "t-dm1" finds "T-DM1" and "T DM1". An
    empty query finds nothing; at most ``MAX_HITS`` hits are returned.
    """
    pattern = query_pattern(query)
    if pattern is None:
        return []
    hits: list[Hit] = []
    for index, segment in enumerate(transcript.segments):
        spans = tuple(match.span() for match in pattern.finditer(segment.text))
        if spans:
            hits.append(Hit(index, segment.start, segment.speaker, segment.text, spans))
            if len(hits) >= MAX_HITS:
                break
    return hits
