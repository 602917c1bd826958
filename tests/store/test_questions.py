"""Written questions in the store: their rules, and what became of each (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.events.schema import EventFile
from callbridge.store.audience import Audience, ListenMode
from callbridge.store.calllog import CallLog
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from callbridge.store.questions import (
    MAX_PER_CALL,
    MAX_TEXT,
    MIN_GAP,
    QuestionNotFound,
    QuestionRefused,
    QuestionStore,
    clean_text,
    question_id,
)

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def test_questions_are_kept_with_their_asker_and_outcome(
    database: Database, example_spec: EventFile
) -> None:
    event = EventStore(database).create(example_spec)
    people = Audience(database)
    _, ana = people.register(event.id, name="Ana", firm="Fjord", email="a@f.example", now=T0)
    _, bo = people.register(event.id, name="Bo", firm=None, email="b@b.example", now=T0)
    questions = QuestionStore(database)
    first = questions.ask(ana, "  What drove\r\n\r\n the margin?  ", T0)
    assert (first.key, first.asker, first.text) == (
        f"q{first.id}",
        "Ana, Fjord",
        "What drove\nthe margin?",
    )
    second = questions.ask(bo, "Capex?", T0 + timedelta(seconds=1))
    assert second.asker == "Bo"
    questions.settle(first.key, "reading", T0 + timedelta(seconds=5))
    questions.settle(first.key, "answered", T0 + timedelta(seconds=60))
    questions.settle(second.key, "dismissed", T0 + timedelta(seconds=61))
    questions.settle("p1-3", "answered", T0)  # a caller's id is no written question: nothing
    found = questions.of_event(event.id)
    assert [(q.name, q.state, q.settled_at) for q in found] == [
        ("Ana", "answered", T0 + timedelta(seconds=60)),
        ("Bo", "dismissed", T0 + timedelta(seconds=61)),
    ]
    assert questions.count(event.id) == 2


def test_one_listener_asks_one_at_a_time_and_a_handful_a_call(
    database: Database, example_spec: EventFile
) -> None:
    event = EventStore(database).create(example_spec)
    _, ana = Audience(database).register(event.id, name="Ana", firm=None, email="a@f.x", now=T0)
    questions = QuestionStore(database)
    questions.ask(ana, "One?", T0)
    with pytest.raises(QuestionRefused, match="one question at a time") as soon:
        questions.ask(ana, "Two?", T0 + MIN_GAP / 2)
    assert soon.value.status == 429 and 0 < soon.value.retry_after <= MIN_GAP.total_seconds()
    at = T0
    for n in range(MAX_PER_CALL - 1):
        at += MIN_GAP
        questions.ask(ana, f"Question {n}?", at)
    with pytest.raises(QuestionRefused, match=f"{MAX_PER_CALL} questions") as many:
        questions.ask(ana, "Another?", at + MIN_GAP)
    assert many.value.status == 429


def test_an_anonymous_browser_may_not_ask(database: Database, example_spec: EventFile) -> None:
    event = EventStore(database).create(example_spec)
    people = Audience(database)
    token = "wl_anonymous-browser-for-the-test"
    people.heard(event.id, token, ListenMode.LIVE, T0, anonymous=True)
    anonymous = people.identify(event.id, token)
    assert anonymous is not None and not anonymous.registered
    with pytest.raises(QuestionRefused, match="register") as refused:
        QuestionStore(database).ask(anonymous, "Hello?", T0)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("", "cannot be empty"),
        (" \u200b\u0007 \n ", "cannot be empty"),
        ("x" * (MAX_TEXT + 1), "at most"),
    ],
)
def test_blank_and_overlong_questions_are_refused(text: str, refusal: str) -> None:
    with pytest.raises(QuestionRefused, match=refusal) as refused:
        clean_text(text)
    assert refused.value.field == "text" and refused.value.status == 422


@given(st.text(max_size=300))
def test_a_cleaned_question_holds_nothing_invisible(text: str) -> None:
    try:
        cleaned = clean_text(text)
    except QuestionRefused:
        return
    assert cleaned == cleaned.strip() and 0 < len(cleaned) <= MAX_TEXT
    assert all(c == "\n" or c.isprintable() or c == " " for c in cleaned)


def test_question_ids_are_q_and_digits_only() -> None:
    assert question_id("q17") == 17
    assert [question_id(k) for k in ("p1-2", "q", "q1x", "q-1", "Q1", "q" + "9" * 30)] == [None] * 6


def test_a_silenced_asker_is_refused_and_the_audit_trail_says_who(
    database: Database, example_spec: EventFile
) -> None:
    event = EventStore(database).create(example_spec)
    people = Audience(database)
    _, ana = people.register(event.id, name="Ana", firm=None, email="Ana@F.example", now=T0)
    _, bo = people.register(event.id, name="Bo", firm=None, email="b@b.example", now=T0)
    questions = QuestionStore(database)
    first = questions.ask(ana, "Buy my newsletter?", T0)
    questions.silence(event.id, first.key, actor="dana", now=T0 + MIN_GAP)
    questions.silence(event.id, first.key, actor="dana", now=T0 + MIN_GAP)  # already: nothing
    with pytest.raises(QuestionRefused, match="not taking further questions") as refused:
        questions.ask(ana, "Again?", T0 + 2 * MIN_GAP)
    assert refused.value.status == 403
    # The same email registered again is the same asker; someone else is not.
    _, again = people.register(event.id, name="Ana 2", firm=None, email="ana@f.example", now=T0)
    assert questions.is_silenced(again)
    questions.ask(bo, "Capex?", T0 + 2 * MIN_GAP)
    questions.unsilence(event.id, first.key, actor="sam", now=T0 + 3 * MIN_GAP)
    questions.ask(ana, "Sorry: the margin?", T0 + 4 * MIN_GAP)
    log = [e for e in CallLog(database).entries(event.id) if e.kind.value.startswith("asker")]
    assert [(e.kind.value, e.actor, e.participant_id) for e in log] == [
        ("asker_silenced", "dana", f"w{ana.id}"),
        ("asker_unsilenced", "sam", f"w{ana.id}"),
    ]
    assert log[0].detail == {"question": first.key, "name": "Ana"}
    with pytest.raises(QuestionNotFound):
        questions.silence(event.id, "q999999", actor="dana", now=T0)
    with pytest.raises(QuestionNotFound):
        questions.silence(event.id + 1, first.key, actor="dana", now=T0)
