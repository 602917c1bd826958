"""The speaker list names speakers as they join: the controller decides, on a clock the test sets.

A caller on the speaker passcode whose number (as the trunk asserts it)
is a listed speaker's phone is named "Name, Title" at join, by the same
command and audit row as the console's naming; anyone else is left for the
moderator to name.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from callbridge.bridge.commands import (
    AuditKind,
    Command,
    EnterCall,
    JoinConference,
    NameParticipant,
)
from callbridge.bridge.controller import SPEAKER_LIST, listed_speaker
from callbridge.cascade.controller import EdgeController
from callbridge.events.schema import EventState, Speaker
from tests.bridge.test_controller import EVENT, Node, audits, northwind

CFO = Speaker(name="Mark Chen", title="Chief Financial Officer", phone="+12125551234")
CEO = Speaker(name="Ana <b>Ruiz</b>", title=None, phone="+442079460000")
IR = Speaker(name="Dana Fox", title="Investor Relations", phone=None)
LISTED = northwind(EventState.LIVE, speakers=[CFO, CEO, IR])


def dial_in(node: Node, call_id: str, role: str, number: str | None) -> list[Command]:
    """Admit and enter a caller from ``number`` (the trunk's user part), as the bridge does."""
    node.admit(role, LISTED, call_id=call_id)
    return node.controller.handle(
        EnterCall(call_id, EVENT, role, False, "Analyst", "+18665550199", node.now, number=number)
    )


def named(commands: list[Command]) -> list[NameParticipant]:
    return [c for c in commands if isinstance(c, NameParticipant)]


@pytest.mark.parametrize(
    "number", ["+12125551234", "12125551234", "2125551234", "+1-212-555-1234", "+1(212)555.1234"]
)
def test_a_speaker_from_a_listed_number_is_named_at_join(number: str) -> None:
    node = Node(LISTED.starts_at + timedelta(minutes=1))
    commands = dial_in(node, "a", "speaker", number)
    (join,) = [c for c in commands if isinstance(c, JoinConference)]
    # The name follows the join: the media participant it names exists by then.
    assert commands.index(join) < commands.index(named(commands)[0])
    assert named(commands) == [
        NameParticipant(EVENT, join.participant_id, "Mark Chen, Chief Financial Officer")
    ]
    row = audits(commands)[-1]
    assert (row.kind, row.participant_id, row.actor, row.detail, row.at) == (
        AuditKind.NAME,
        join.participant_id,
        SPEAKER_LIST,
        {"name": "Mark Chen, Chief Financial Officer"},
        node.now,
    )
    call = node.controller.call(EVENT)
    assert call is not None
    assert call.member(join.participant_id).name == "Mark Chen, Chief Financial Officer"


def test_a_speaker_without_a_title_is_named_alone_and_markup_stays_text() -> None:
    node = Node(LISTED.starts_at)
    commands = dial_in(node, "a", "speaker", "+44 20 7946 0000")
    assert [c.name for c in named(commands)] == ["Ana <b>Ruiz</b>"]


@pytest.mark.parametrize(
    ("role", "number"),
    [
        ("listener", "+12125551234"),  # the list names speakers, not listeners
        ("speaker", "+12125550000"),  # a number not on the list
        ("speaker", None),  # no trunk vouched for the number
        ("speaker", "anonymous"),  # not a number at all
        ("speaker", "analyst1"),
    ],
)
def test_anyone_else_joins_unnamed(role: str, number: str | None) -> None:
    node = Node(LISTED.starts_at)
    commands = dial_in(node, "a", role, number)
    assert [c for c in commands if isinstance(c, JoinConference)]
    assert named(commands) == []
    assert AuditKind.NAME not in [row.kind for row in audits(commands)]


def test_the_list_is_the_one_the_store_gave_with_the_last_caller_let_in() -> None:
    node = Node(LISTED.starts_at)
    assert named(dial_in(node, "a", "speaker", "+12125551234"))
    # The operator took the CFO off the list; the next caller from the number is not named.
    node.clock.advance(30)
    node.admit("speaker", northwind(EventState.LIVE, speakers=[CEO]), call_id="b")
    later = node.controller.handle(
        EnterCall("b", EVENT, "speaker", False, "Analyst", None, node.now, number="+12125551234")
    )
    assert named(later) == []


def test_a_moderator_renames_a_listed_speaker_as_anyone() -> None:
    node = Node(LISTED.starts_at)
    (join,) = [
        c for c in dial_in(node, "a", "speaker", "+12125551234") if isinstance(c, JoinConference)
    ]
    commands = node.act("name", join.participant_id, name="Mark Chen, CFO")
    assert named(commands) == [NameParticipant(EVENT, join.participant_id, "Mark Chen, CFO")]


def test_a_number_listed_twice_names_no_one() -> None:
    twice = (CFO, Speaker(name="Lee Park", title="CEO", phone=CFO.phone))
    assert listed_speaker(twice, "+12125551234") is None
    assert listed_speaker((CFO,), "+12125551234") == CFO
    assert listed_speaker((IR,), None) is None


def test_an_edge_of_a_cascade_leaves_naming_to_its_origin() -> None:
    node = Node(LISTED.starts_at)
    node.controller = EdgeController("edge-1")
    commands = dial_in(node, "a", "speaker", "+12125551234")
    assert [c for c in commands if isinstance(c, JoinConference)]
    assert named(commands) == []
