"""Speaker turns and the transcript documents (plain text and HTML)."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.pieces import INAUDIBLE
from callbridge.transcript.transcribe import qa_start_in
from callbridge.transcript.turns import (
    QA,
    as_docx,
    as_html,
    as_text,
    clock,
    is_prompt,
    speaker_turns,
)

TRANSCRIPT = Transcript(
    segments=[
        TranscriptSegment(1.0, 4.0, "Operator", "Welcome to the Northwind call."),
        TranscriptSegment(4.5, 6.0, "Operator", "Please go ahead."),
        TranscriptSegment(7.0, 11.0, "Jane Roe", "Revenue grew to $42 million, up 12%."),
        TranscriptSegment(11.5, 14.0, "Jane Roe", INAUDIBLE),
        TranscriptSegment(14.2, 16.0, "Jane Roe", "Net loss was $0.31 per share <not> & more."),
        TranscriptSegment(75.0, 78.0, "Speaker 1", "What drove the margin?"),
        TranscriptSegment(3700.0, 3702.0, "Operator", "This concludes the call."),
    ],
    engine="fake",
    duration_s=3710.0,
    elapsed_s=1.0,
)


def test_consecutive_segments_of_a_speaker_are_one_turn() -> None:
    turns = speaker_turns(TRANSCRIPT)
    assert [turn.speaker for turn in turns] == ["Operator", "Jane Roe", "Speaker 1", "Operator"]
    assert turns[0].segments == (0, 1) and turns[1].segments == (2, 3, 4)
    assert turns[0].text == "Welcome to the Northwind call. Please go ahead."
    assert (turns[1].start, turns[1].end) == (7.0, 16.0)
    # Speech that could not be transcribed shows where it was.
    assert "[inaudible 0:11–0:14]" in turns[1].text
    assert [clock(t) for t in (0.0, 65.4, 3725.0)] == ["0:00", "1:05", "1:02:05"]


def test_plain_text_has_a_paragraph_per_turn() -> None:
    text = as_text(TRANSCRIPT, "Northwind Q3 2026 earnings call")
    assert text.startswith("Northwind Q3 2026 earnings call\n===")
    assert "[0:07] Jane Roe\nRevenue grew to $42 million, up 12%. [inaudible 0:11–0:14]" in text
    assert "[1:01:40] Operator\nThis concludes the call.\n" in text
    assert text.count("\n\n") == 4


class _Paragraphs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.turns: list[str] = []
        self.tags: list[str] = []
        self._in_turn = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "p" and ("class", "turn") in attrs:
            self._in_turn = True
            self.turns.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_turn = False

    def handle_data(self, data: str) -> None:
        if self._in_turn:
            self.turns[-1] += data


def test_html_is_a_standalone_page_with_the_same_turns_escaped() -> None:
    page = as_html(TRANSCRIPT, "Northwind <Q3>")
    assert page.startswith("<!doctype html>") and "<title>Northwind &lt;Q3&gt;</title>" in page
    parser = _Paragraphs()
    parser.feed(page)
    assert len(parser.turns) == 4
    assert parser.turns[1] == "0:07Jane Roe" + speaker_turns(TRANSCRIPT)[1].text
    assert "<not>" not in page and "&lt;not&gt; &amp; more" in page
    assert "script" not in parser.tags and "link" not in parser.tags


def test_a_transcript_without_speakers_still_reads() -> None:
    plain = Transcript([TranscriptSegment(0.0, 2.0, None, "Hello.")], "fake", 2.0, 0.1)
    assert "[0:00] Speaker\nHello." in as_text(plain)


# A call with the bridge's prompt in a stem, and an analyst's line opened at 60 s.
CALL = Transcript(
    segments=[
        TranscriptSegment(1.0, 5.0, "Jane Roe", "Revenue grew to $42 million, up 12%."),
        TranscriptSegment(5.5, 9.0, "Jane Roe", "We will now open the line for questions."),
        TranscriptSegment(61.0, 62.5, "Speaker 2", "Your line is now open."),
        TranscriptSegment(63.0, 66.0, "Speaker 2", "What drove the gross margin to 61.4%?"),
        TranscriptSegment(67.0, 70.0, "Jane Roe", "Mostly the $0.31 per share of savings."),
    ],
    engine="fake",
    duration_s=71.0,
    elapsed_s=1.0,
    qa_start=60.0,
)


def test_recorded_prompts_are_the_operators_whoever_said_them() -> None:
    assert is_prompt("Your line is now open.")
    assert is_prompt("you are now joining the conference as a speaker")
    assert is_prompt("Your line is now opened")  # an engine's slip
    assert not is_prompt("We will now open the line for questions.")
    assert not is_prompt("Thank you.")
    turns = speaker_turns(CALL)
    assert [(t.label, t.prompt) for t in turns] == [
        ("Jane Roe", False),
        ("Operator", True),
        ("Speaker 2", False),
        ("Jane Roe", False),
    ]


def test_the_question_and_answer_session_starts_at_the_first_open_line() -> None:
    assert [t.qa for t in speaker_turns(CALL)] == [False, True, True, True]
    text = as_text(CALL, "Northwind")
    remarks, qa = text.index("Prepared remarks\n---"), text.index(f"{QA}\n---")
    assert remarks < text.index("$42 million") < qa < text.index("61.4%")
    assert "[1:01] Operator (recorded prompt)\nYour line is now open.\n" in text
    page = as_html(CALL, "Northwind")
    assert page.index("<h2>Prepared remarks</h2>") < page.index(f"<h2>{QA}</h2>")
    assert '<p class="turn prompt">' in page
    # Without the call log's open-line time there are no parts.
    plain = as_text(TRANSCRIPT)
    assert "Prepared remarks" not in plain and QA not in plain


def test_the_word_document_holds_the_turns_and_figures() -> None:
    if os.environ.get("CI"):
        import docx
    else:
        docx = pytest.importorskip("docx", reason="python-docx is not installed (pyproject)")
    document = docx.Document(io.BytesIO(as_docx(CALL, "Northwind Q3 2026")))
    assert document.core_properties.title == "Northwind Q3 2026"
    paragraphs = [(p.style.name if p.style else "", p.text) for p in document.paragraphs]
    headings = [text for style, text in paragraphs if style.startswith("Heading")]
    assert headings == ["Prepared remarks", QA]
    turns = [text for style, text in paragraphs if not style.startswith(("Heading", "Title"))]
    assert turns == [f"{clock(t.start)}  {t.label}\n{t.text}" for t in speaker_turns(CALL)]
    assert "$42 million" in turns[0] and "61.4%" in turns[2] and "$0.31 per share" in turns[3]
    prompt = document.paragraphs[[t for _, t in paragraphs].index(turns[1])]
    assert prompt.runs[0].bold and prompt.runs[-1].italic


def test_the_qa_starts_at_the_first_line_opened_while_recording(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"started_at": "2026-11-05T21:30:00Z"}))
    start = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)
    opened = [start - timedelta(minutes=5), start + timedelta(seconds=95.5), start + timedelta(60)]
    assert qa_start_in(tmp_path, opened) == 95.5  # a line opened on an earlier call is not it
    assert qa_start_in(tmp_path, []) is None
    assert qa_start_in(tmp_path / "nowhere", opened) is None
    # Kept in transcript.json, so the documents written again later keep their parts.
    again = Transcript.from_json(json.loads(json.dumps(CALL.to_json())))
    assert again.qa_start == 60.0 and as_text(again) == as_text(CALL)
