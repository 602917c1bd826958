"""A transcript as an earnings-call transcript reads: paragraphs by speaker turn, as text or HTML.

Call ``speaker_turns`` for the paragraphs (the replay page shows them);
``as_text`` and ``as_html`` give the documents ``write_transcript`` puts next
to transcript.json (transcript.txt and transcript.html), which an IR team can
post as they are. All pure: a ``Transcript`` in, text out.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callbridge.transcript.pieces import INAUDIBLE

if TYPE_CHECKING:  # transcribe.py writes these documents, so it imports this module
    from callbridge.transcript.transcribe import Transcript, TranscriptSegment

TEXT = "transcript.txt"
HTML = "transcript.html"
UNNAMED = "Speaker"  # the label of a turn in a transcript made without speaker stems


@dataclass(frozen=True)
class Turn:
    """One speaker's uninterrupted stretch: their segments' indices and texts, in order."""

    speaker: str | None
    start: float
    end: float
    segments: tuple[int, ...]
    texts: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.texts)


def clock(seconds: float) -> str:
    """ "1:05" or "1:02:03": a time into the recording as a transcript prints it."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def shown_text(segment: TranscriptSegment) -> str:
    """A segment's text as a reader sees it: speech not transcribed says when it was."""
    if segment.text == INAUDIBLE:
        return f"[inaudible {clock(segment.start)}–{clock(segment.end)}]"
    return segment.text


def speaker_turns(transcript: Transcript) -> list[Turn]:
    """Consecutive segments of one speaker joined into turns, in time order.

    A segment another speaker says in the middle (an overlap, "right") starts a
    new turn; segments without text are left out.
    """
    turns: list[Turn] = []
    for index, segment in enumerate(transcript.segments):
        if not segment.text.strip():
            continue
        if turns and turns[-1].speaker == segment.speaker:
            last = turns[-1]
            turns[-1] = Turn(
                last.speaker,
                last.start,
                max(last.end, segment.end),
                (*last.segments, index),
                (*last.texts, shown_text(segment)),
            )
        else:
            turns.append(
                Turn(segment.speaker, segment.start, segment.end, (index,), (shown_text(segment),))
            )
    return turns


def as_text(transcript: Transcript, title: str = "Transcript") -> str:
    """Plain text: a title, then one paragraph per turn led by its time and speaker."""
    lines = [title, "=" * len(title), ""]
    for turn in speaker_turns(transcript):
        lines.append(f"[{clock(turn.start)}] {turn.speaker or UNNAMED}")
        lines.append(turn.text)
        lines.append("")
    return "\n".join(lines)


_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}"
    ".turn{margin:0 0 1.2rem}.who{font-weight:600}.at{color:#555;font-variant-numeric:"
    "tabular-nums;margin-right:.5rem}"
)


def as_html(transcript: Transcript, title: str = "Transcript") -> str:
    """A standalone HTML document (no scripts, no outside resources), every text escaped."""
    body = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for turn in speaker_turns(transcript):
        who = html.escape(turn.speaker or UNNAMED)
        body.append(
            f'<p class="turn"><span class="at">{clock(turn.start)}</span>'
            f'<span class="who">{who}</span><br>{html.escape(turn.text)}</p>'
        )
    body.append("</body></html>")
    return "\n".join(body) + "\n"
