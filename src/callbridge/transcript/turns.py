"""A transcript as an earnings-call transcript reads: paragraphs by speaker turn, as text or HTML.

Call ``speaker_turns`` for the paragraphs (the replay page shows them);
``as_text``, ``as_html`` and ``as_docx`` give the documents ``write_transcript``
puts next to transcript.json (transcript.txt, transcript.html and
transcript.docx), which an IR team can post as they are. All pure: a
``Transcript`` in, text (or the DOCX file's bytes) out.

Two marks an earnings-call transcript carries:

* the bridge's recorded prompts ("Your line is now open.") are known text: a
  segment that reads as one of them is the operator's, whoever's stem it came
  from, and its turn is marked ``prompt``;
* the question-and-answer session starts when the first analyst's line was
  opened (``Transcript.qa_start``, from the call log): turns from then on are
  marked ``qa``, and the documents head the two parts "Prepared remarks" and
  "Question-and-answer session".
"""

from __future__ import annotations

import difflib
import functools
import html
import io
from dataclasses import dataclass

from callbridge.media.prompts import PROMPT_TEXT
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.pieces import INAUDIBLE
from callbridge.transcript.wer import normalise

TEXT = "transcript.txt"
HTML = "transcript.html"
DOCX = "transcript.docx"
UNNAMED = "Speaker"  # the label of a turn in a transcript made without speaker stems
OPERATOR = "Operator"  # the label of the bridge's recorded prompts
REMARKS = "Prepared remarks"
QA = "Question-and-answer session"
# A segment whose words match a prompt's this closely is that prompt (engines miss a word or two).
PROMPT_MATCH = 0.8


@dataclass(frozen=True)
class Turn:
    """One speaker's uninterrupted stretch: their segments' indices and texts, in order.

    ``prompt``: the bridge's recorded prompt, said by the operator; ``qa``: in
    the question-and-answer session.
    """

    speaker: str | None
    start: float
    end: float
    segments: tuple[int, ...]
    texts: tuple[str, ...]
    prompt: bool = False
    qa: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    @property
    def label(self) -> str:
        """Who the documents say is speaking."""
        return self.speaker or UNNAMED


@functools.cache
def _prompt_words() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(normalise(text, numbers=True)) for text in PROMPT_TEXT.values())


def is_prompt(text: str) -> bool:
    """Whether ``text`` reads as one of the bridge's recorded prompts, give or take a word."""
    words = normalise(text, numbers=True)
    if len(words) < 3:  # "You are muted." is a prompt; "Thank you." is anyone's
        return False
    for prompt in _prompt_words():
        if abs(len(prompt) - len(words)) > max(2, len(prompt) // 4):
            continue
        if difflib.SequenceMatcher(None, prompt, words).ratio() >= PROMPT_MATCH:
            return True
    return False


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
    new turn, and so do a recorded prompt (the operator's) and the start of the
    question-and-answer session; segments without text are left out.
    """
    qa_start = transcript.qa_start
    turns: list[Turn] = []
    for index, segment in enumerate(transcript.segments):
        if not segment.text.strip():
            continue
        prompt = is_prompt(segment.text)
        speaker = OPERATOR if prompt else segment.speaker
        qa = qa_start is not None and segment.start >= qa_start - 0.5
        last = turns[-1] if turns else None
        if last is not None and (last.speaker, last.prompt, last.qa) == (speaker, prompt, qa):
            turns[-1] = Turn(
                last.speaker,
                last.start,
                max(last.end, segment.end),
                (*last.segments, index),
                (*last.texts, shown_text(segment)),
                prompt,
                qa,
            )
        else:
            turns.append(
                Turn(
                    speaker,
                    segment.start,
                    segment.end,
                    (index,),
                    (shown_text(segment),),
                    prompt,
                    qa,
                )
            )
    return turns


def sections(transcript: Transcript) -> list[tuple[str | None, list[Turn]]]:
    """The turns under their part's heading: one untitled part, or prepared remarks and Q&A."""
    turns = speaker_turns(transcript)
    if transcript.qa_start is None:
        return [(None, turns)]
    remarks = [turn for turn in turns if not turn.qa]
    qa = [turn for turn in turns if turn.qa]
    return [(title, part) for title, part in ((REMARKS, remarks), (QA, qa)) if part]


def as_text(transcript: Transcript, title: str = "Transcript") -> str:
    """Plain text: a title, then one paragraph per turn led by its time and speaker."""
    lines = [title, "=" * len(title), ""]
    for heading, part in sections(transcript):
        if heading is not None:
            lines.extend([heading, "-" * len(heading), ""])
        for turn in part:
            mark = " (recorded prompt)" if turn.prompt else ""
            lines.append(f"[{clock(turn.start)}] {turn.label}{mark}")
            lines.append(turn.text)
            lines.append("")
    return "\n".join(lines)


_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}"
    ".turn{margin:0 0 1.2rem}.who{font-weight:600}.at{color:#555;font-variant-numeric:"
    "tabular-nums;margin-right:.5rem}.prompt{font-style:italic;color:#444}"
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
    for heading, part in sections(transcript):
        if heading is not None:
            body.append(f"<h2>{html.escape(heading)}</h2>")
        for turn in part:
            who = html.escape(turn.label)
            kind = "turn prompt" if turn.prompt else "turn"
            body.append(
                f'<p class="{kind}"><span class="at">{clock(turn.start)}</span>'
                f'<span class="who">{who}</span><br>{html.escape(turn.text)}</p>'
            )
    body.append("</body></html>")
    return "\n".join(body) + "\n"


def as_docx(transcript: Transcript, title: str = "Transcript") -> bytes:
    """A Word document (python-docx): the title, the parts' headings, a paragraph per turn.

    Each turn's paragraph starts with its time and speaker in bold, then a
    line break and what was said; recorded prompts are in italics. Raises
    ``ImportError`` when python-docx is not installed.
    """
    from docx import Document

    document = Document()
    document.core_properties.title = title
    document.add_heading(title, level=0)
    for heading, part in sections(transcript):
        if heading is not None:
            document.add_heading(heading, level=1)
        for turn in part:
            paragraph = document.add_paragraph()
            paragraph.add_run(f"{clock(turn.start)}  {turn.label}").bold = True
            paragraph.add_run().add_break()
            paragraph.add_run(turn.text).italic = turn.prompt
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
