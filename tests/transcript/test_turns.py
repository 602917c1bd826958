"""Speaker turns and the transcript documents (plain text and HTML)."""

from __future__ import annotations

from html.parser import HTMLParser

from callbridge.transcript.pieces import INAUDIBLE
from callbridge.transcript.transcribe import Transcript, TranscriptSegment
from callbridge.transcript.turns import as_html, as_text, clock, speaker_turns

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
