"""The editor's pass: changes checked, laid over the automatic transcript, published,
read in sections, and recurring corrections offered for the glossary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callbridge.transcript import editing
from callbridge.transcript.editing import (
    Change,
    EditError,
    EditField,
    Mark,
    MarkKind,
    Published,
    apply,
    glossary_offers,
    marked_sections,
    parse_changes,
    publish,
    word_changes,
)
from callbridge.transcript.model import Transcript, TranscriptSegment

AT = datetime(2026, 11, 6, 15, 0, tzinfo=UTC)
AUTOMATIC = Transcript(
    segments=[
        TranscriptSegment(1.0, 4.0, "Operator", "Welcome to the Northwind call."),
        TranscriptSegment(7.0, 11.0, "Speaker 1", "Sales of zylo prin grew to $42 million."),
        TranscriptSegment(11.5, 14.0, "Speaker 1", "Zylo prin is now in 12 countries."),
        TranscriptSegment(75.0, 78.0, "Speaker 2", "What drove the growth?"),
        TranscriptSegment(79.0, 83.0, "Speaker 1", "Mostly zylo prin in Europe."),
    ],
    engine="fake",
    duration_s=90.0,
    elapsed_s=1.0,
    qa_start=74.0,
)


def values(*changes: Change) -> dict[tuple[int, EditField], str]:
    return {(c.segment, c.field): c.value for c in changes}


def test_changes_are_checked_and_the_fault_named() -> None:
    parsed = parse_changes(
        [
            {"segment": 1, "text": "  Sales of  Zyloprin grew. ", "speaker": "Jane Roe, CFO"},
            {"segment": 3, "mark": "question: Ann Lee,  Acme Securities "},
        ],
        AUTOMATIC,
    )
    assert parsed == [
        Change(1, EditField.TEXT, "Sales of Zyloprin grew."),
        Change(1, EditField.SPEAKER, "Jane Roe, CFO"),
        Change(3, EditField.MARK, "question:Ann Lee, Acme Securities"),
    ]
    faults = [
        ({"segment": 9, "text": "x"}, "edits[0].segment"),
        ({"segment": True, "text": "x"}, "edits[0].segment"),
        ({"segment": 0, "text": 5}, "edits[0].text"),
        ({"segment": 0, "text": "x" * (editing.MAX_TEXT + 1)}, "edits[0].text"),
        ({"segment": 0, "speaker": "x" * 101}, "edits[0].speaker"),
        ({"segment": 0, "mark": "coda"}, "edits[0].mark"),
        ({"segment": 0, "mark": "qa:Someone"}, "edits[0].mark"),
        ({"segment": 0, "colour": "red"}, "edits[0].colour"),
    ]
    for item, where in faults:
        with pytest.raises(EditError) as raised:
            parse_changes([item], AUTOMATIC)
        assert raised.value.field == where, item
    with pytest.raises(EditError, match="edits"):
        parse_changes({"segment": 0}, AUTOMATIC)


def test_the_draft_lays_corrections_over_the_automatic_transcript() -> None:
    draft = apply(
        AUTOMATIC,
        values(
            Change(1, EditField.TEXT, "Sales of Zyloprin grew to $42 million."),
            Change(1, EditField.SPEAKER, "Jane Roe, Chief Financial Officer"),
            Change(2, EditField.SPEAKER, "Speaker 1"),  # as it was: no correction
            Change(3, EditField.MARK, "question:Ann Lee, Acme Securities"),
            Change(0, EditField.MARK, ""),  # a mark taken away
        ),
    )
    segments = draft.transcript.segments
    assert segments[1].text == "Sales of Zyloprin grew to $42 million."
    assert segments[1].speaker == "Jane Roe, Chief Financial Officer"
    assert segments[2] == AUTOMATIC.segments[2]
    assert draft.corrected == frozenset({1})
    assert draft.marks == (Mark(3, MarkKind.QUESTION, "Ann Lee, Acme Securities"),)
    # The automatic transcript itself is untouched.
    assert AUTOMATIC.segments[1].text == "Sales of zylo prin grew to $42 million."


def test_a_correction_made_on_an_earlier_transcript_is_left_out() -> None:
    draft = apply(
        AUTOMATIC,
        values(Change(1, EditField.TEXT, "Sales grew."), Change(2, EditField.TEXT, "In 12.")),
        starts={1: 7.0, 2: 30.0},  # segment 2 then started elsewhere
    )
    assert draft.transcript.segments[1].text == "Sales grew."
    assert draft.transcript.segments[2].text == AUTOMATIC.segments[2].text
    assert draft.stale == (2,)


def test_published_reads_back_from_json_and_refuses_an_empty_transcript() -> None:
    draft = apply(AUTOMATIC, values(Change(3, EditField.MARK, "qa")))
    done = publish(draft, 2, AT, "dana")
    assert Published.from_json(done.to_json()) == done
    assert (done.version, done.published_by, done.marks) == (2, "dana", (Mark(3, MarkKind.QA),))
    silent = apply(AUTOMATIC, {(i, EditField.TEXT): "" for i in range(5)})
    with pytest.raises(EditError, match="nothing to publish"):
        publish(silent, 1, AT, "dana")


def test_sections_follow_the_marks_and_a_turn_never_crosses_one() -> None:
    unmarked = marked_sections(AUTOMATIC, ())
    assert [s.heading for s in unmarked] == ["Prepared remarks", "Question-and-answer session"]
    marks = (
        Mark(1, MarkKind.REMARKS),
        Mark(2, MarkKind.QA),  # in the middle of Speaker 1's turn
        Mark(3, MarkKind.QUESTION, "Ann Lee, Acme Securities"),
    )
    found = marked_sections(AUTOMATIC, marks)
    assert [(s.heading, s.level) for s in found] == [
        (None, 2),
        ("Prepared remarks", 2),
        ("Question-and-answer session", 2),
        ("Question from Ann Lee, Acme Securities", 3),
    ]
    assert [[t.segments for t in s.turns] for s in found] == [[(0,)], [(1,)], [(2,)], [(3,), (4,)]]


def test_word_changes_are_the_replaced_words() -> None:
    assert word_changes("Sales of zylo prin grew.", "Sales of Zyloprin grew.") == [
        ("zylo prin", "Zyloprin")
    ]
    assert word_changes("we saw ebitda rise", "we saw EBITDA rise") == [("ebitda", "EBITDA")]
    assert word_changes("the the growth", "the growth") == []  # a word taken out is no term
    assert word_changes("grew, Zyloprin.", "grew, Zyloprin!") == []


def test_a_correction_made_twice_is_offered_for_the_glossary() -> None:
    pairs = [
        ("Sales of zylo prin grew.", "Sales of Zyloprin grew."),
        ("Zylo prin is now sold.", "Zyloprin is now sold."),
        ("Mostly zylo prin in Europe.", "Mostly Zyloprin in Europe."),
        ("We met Dr smith.", "We met Dr. Smyth."),  # once: not offered
    ]
    offers = glossary_offers(pairs, glossary=["Northwind"])
    assert [(o.term, o.count, o.heard) for o in offers] == [
        ("Zyloprin", 3, ("zylo prin", "Zylo prin"))
    ]
    assert glossary_offers(pairs, glossary=["zyloprin"]) == []  # already there, any case
    long = [("a b", "one two three four five")] * 3  # a sentence is no term
    assert glossary_offers(long, glossary=[]) == []


def test_questions_marked_alone_sit_under_the_automatic_parts() -> None:
    found = marked_sections(AUTOMATIC, (Mark(3, MarkKind.QUESTION, "Ann Lee"),))
    assert [(s.heading, [t.segments for t in s.turns]) for s in found] == [
        ("Prepared remarks", [(0,), (1, 2)]),
        ("Question-and-answer session", []),  # the first question follows at once
        ("Question from Ann Lee", [(3,), (4,)]),
    ]
