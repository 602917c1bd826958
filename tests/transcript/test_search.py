from __future__ import annotations

from callbridge.transcript.model import Transcript, TranscriptSegment, search

TRANSCRIPT = Transcript(
    segments=[
        TranscriptSegment(1.0, 4.0, "Operator", "Welcome to the Northwind call."),
        TranscriptSegment(
            5.0, 9.0, "Jane Roe", "Sales of T-DM1 doubled; T DM1 <grew> & ARPU rose."
        ),
        TranscriptSegment(
            10.0, 12.0, "Speaker 1", "What drove arpu? And the northwind-call guidance?"
        ),
    ],
    engine="fake",
    duration_s=12.0,
    elapsed_s=1.0,
)


def test_case_insensitive_whole_words() -> None:
    hits = search(TRANSCRIPT, "arpu")
    assert [(hit.segment, hit.start, hit.speaker) for hit in hits] == [
        (1, 5.0, "Jane Roe"),
        (2, 10.0, "Speaker 1"),
    ]
    assert search(TRANSCRIPT, "arp") == []
    assert search(TRANSCRIPT, "   ") == []
    assert search(TRANSCRIPT, "?!") == []


def test_phrases_ignore_punctuation_between_words() -> None:
    hits = search(TRANSCRIPT, "Northwind call")
    assert [hit.segment for hit in hits] == [0, 2]
    assert hits[1].text[slice(*hits[1].spans[0])] == "northwind-call"
    hits = search(TRANSCRIPT, "t-dm1")
    assert len(hits) == 1 and len(hits[0].spans) == 2


def test_marked_text_is_escaped_html() -> None:
    (hit,) = search(TRANSCRIPT, "grew")
    assert hit.marked() == (
        "Sales of T-DM1 doubled; T DM1 &lt;<mark>grew</mark>&gt; &amp; ARPU rose."
    )
    (hit,) = search(TRANSCRIPT, "welcome")
    assert hit.marked("[", "]") == "[Welcome] to the Northwind call."
