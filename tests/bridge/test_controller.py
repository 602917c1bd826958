"""The call controller in memory, on a clock the test sets: events in, commands out.

Every keypad command and every moderator action, the question queue's
moves as callers and the moderator make them, the lock, the conference and
replay windows, and listener against speaker passcodes.
"""

from __future__ import annotations

import subprocess
import sys
import typing
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from callbridge.bridge.commands import (
    AnswerCaller,
    AuditKind,
    Changed,
    CloseLine,
    Command,
    Disconnect,
    EndCall,
    EndConference,
    EnterCall,
    Farewell,
    JoinConference,
    KeyPressed,
    LeaveConference,
    LeftCall,
    Moderate,
    NameParticipant,
    OpenConference,
    OpenLine,
    PasscodeMatched,
    QuestionWritten,
    RecordAudit,
    SetEventState,
    SetMuted,
    SetQuestionState,
    StartCall,
    StartConference,
    Whisper,
)
from callbridge.bridge.control import Action, BridgeError, ParticipantState, Role
from callbridge.bridge.controller import KEYPAD, MODERATOR, CallController
from callbridge.bridge.queue import Floor
from callbridge.bridge.views import queue_entry
from callbridge.events.schema import EventFile, EventRecord, EventState
from callbridge.ivr.machine import Outcome
from callbridge.media.conference import ConferenceState
from callbridge.media.prompts import PromptName
from callbridge.store.calllog import LogKind
from tests.announce.conftest import example_data, to_record

EVENT = 7


def northwind(state: EventState = EventState.SCHEDULED, **changes: object) -> EventRecord:
    """The example event (Nov 5 2026, 21:30 UTC, 60 minutes, replay through Nov 12)."""
    record = to_record(EventFile.model_validate(example_data()), EVENT, state)
    return record.model_copy(update=changes)


RECORD = northwind()
START = RECORD.starts_at


class Clock:
    """The wall clock the test moves; every event is stamped with it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class Node:
    """A controller and its clock, with the events written short."""

    def __init__(self, now: datetime = START, max_participants: int = 5000) -> None:
        self.clock = Clock(now)
        self.controller = CallController(max_participants=max_participants)

    @property
    def now(self) -> datetime:
        return self.clock.now

    def admit(
        self,
        role: str,
        record: EventRecord = RECORD,
        call_id: str = "c",
        replay_ready: datetime | None = None,
    ) -> AnswerCaller:
        (answer,) = self.controller.handle(
            PasscodeMatched(call_id, EVENT, role, record, self.now, replay_ready)
        )
        assert isinstance(answer, AnswerCaller)
        return answer

    def enter(
        self, call_id: str, role: str = "listener", hold: bool = False, number: str | None = None
    ) -> list[Command]:
        return self.controller.handle(
            EnterCall(
                call_id,
                EVENT,
                role,
                hold,
                f"caller {call_id}",
                "+18665550199",
                self.now,
                number=number,
            )
        )

    def join(self, call_id: str, role: str = "listener", hold: bool = False) -> str:
        """Enter a caller; returns their participant id."""
        joined = [c for c in self.enter(call_id, role, hold) if isinstance(c, JoinConference)]
        assert len(joined) == 1
        return joined[0].participant_id

    def keys(self, call_id: str, keys: str) -> list[Command]:
        commands: list[Command] = []
        for key in keys:
            commands += self.controller.handle(KeyPressed(call_id, key, self.now))
        return commands

    def act(
        self,
        action: str,
        participant_id: str | None = None,
        position: int | None = None,
        event_state: EventState | None = None,
        name: str | None = None,
    ) -> list[Command]:
        return self.controller.handle(
            Moderate(
                EVENT,
                Action(action=action, participant_id=participant_id, position=position, name=name),  # type: ignore[arg-type]
                "dana",
                self.now,
                event_state,
            )
        )

    def start(self, state: EventState = EventState.SCHEDULED) -> list[Command]:
        return self.controller.handle(StartCall(EVENT, state, self.now))

    def end(self, state: EventState = EventState.LIVE) -> list[Command]:
        return self.controller.handle(EndCall(EVENT, state, self.now))

    def leave(self, call_id: str, reason: str = "bye") -> list[Command]:
        return self.controller.handle(LeftCall(call_id, reason, self.now))

    def floor(self, participant_id: str) -> Floor | None:
        call = self.controller.call(EVENT)
        assert call is not None
        return call.queue.floor(participant_id)

    def queue(self) -> list[str]:
        call = self.controller.call(EVENT)
        assert call is not None
        return call.queue.order

    def snapshot(self) -> object:
        """Everything a refusal must leave as it was."""
        call = self.controller.call(EVENT)
        if call is None:
            return None
        return (
            call.state,
            call.locked,
            [
                (m.id, m.role, m.state, m.muted, call.queue.floor(m.id))
                for m in call.members.values()
            ],
            call.queue.order,
        )


def audits(commands: list[Command]) -> list[RecordAudit]:
    return [c for c in commands if isinstance(c, RecordAudit)]


def only_audit(commands: list[Command]) -> RecordAudit:
    (row,) = audits(commands)
    return row


# -- who may join: passcodes, windows, the lock -----------------------------------------------


@pytest.mark.parametrize(
    ("offset", "state", "outcome", "hold"),
    [
        (timedelta(minutes=-31), EventState.SCHEDULED, Outcome.NOT_STARTED, False),
        (timedelta(minutes=-30), EventState.SCHEDULED, Outcome.JOINED, True),
        (timedelta(minutes=5), EventState.SCHEDULED, Outcome.JOINED, True),
        (timedelta(minutes=-31), EventState.LIVE, Outcome.JOINED, False),
        (timedelta(minutes=179), EventState.LIVE, Outcome.JOINED, False),
        (timedelta(minutes=180), EventState.LIVE, Outcome.ENDED, False),
        (timedelta(minutes=10), EventState.ENDED, Outcome.ENDED, False),
        (timedelta(minutes=10), EventState.ARCHIVED, Outcome.ENDED, False),
    ],
)
def test_the_window_decides_a_live_call_passcode(
    offset: timedelta, state: EventState, outcome: Outcome, hold: bool
) -> None:
    node = Node(START + offset)
    for role in ("listener", "speaker"):
        answer = node.admit(role, northwind(state))
        assert (answer.outcome, answer.hold) == (outcome, hold)
        joined = outcome is Outcome.JOINED
        assert answer.event_id == (EVENT if joined else None)
        assert answer.role == (role if joined else None)
    assert node.controller.call(EVENT) is None  # deciding opens nothing


def test_early_callers_are_not_held_once_the_call_started_here() -> None:
    node = Node(START - timedelta(minutes=10))
    node.start()
    # The store still says scheduled (its write may lag); this node knows better.
    assert node.admit("listener").hold is False


def test_a_locked_call_turns_listeners_away_and_lets_speakers_in() -> None:
    node = Node()
    node.act("lock", event_state=EventState.SCHEDULED)
    assert node.admit("listener").outcome is Outcome.LOCKED
    assert node.admit("speaker").outcome is Outcome.JOINED
    node.act("unlock")
    assert node.admit("listener").outcome is Outcome.JOINED


def test_replay_codes_by_the_replay_window() -> None:
    ended = northwind(EventState.ENDED)
    ready = START + timedelta(hours=1, minutes=5)
    node = Node(START + timedelta(minutes=30))
    # The call is still on, or ended with no recording yet.
    assert node.admit("replay", northwind(EventState.LIVE)).outcome is Outcome.REPLAY_NOT_YET
    assert node.admit("replay", ended).outcome is Outcome.REPLAY_NOT_YET
    node.clock.now = ready + timedelta(minutes=1)
    answer = node.admit("replay", ended, replay_ready=ready)
    assert (answer.outcome, answer.event_id, answer.role) == (Outcome.JOINED, EVENT, "replay")
    # Through November 12 in New York: 05:00 UTC on the 13th closes it.
    node.clock.now = datetime.fromisoformat("2026-11-13T04:59:59+00:00")
    assert node.admit("replay", ended, replay_ready=ready).outcome is Outcome.JOINED
    node.clock.now = datetime.fromisoformat("2026-11-13T05:00:00+00:00")
    assert node.admit("replay", ended, replay_ready=ready).outcome is Outcome.EXPIRED
    no_replay = northwind(EventState.ENDED, replay_until=None)
    assert node.admit("replay", no_replay, replay_ready=ready).outcome is Outcome.EXPIRED


# -- joining and leaving --------------------------------------------------------------------


def test_listener_and_speaker_passcodes_join_in_their_roles() -> None:
    node = Node()
    first = node.enter("a", "speaker", hold=True)
    assert isinstance(first[0], OpenConference)  # the first caller opens the conference
    joined = next(c for c in first if isinstance(c, JoinConference))
    assert (joined.call_id, joined.participant_id, joined.role) == ("a", "p7-1", Role.SPEAKER)
    assert Changed(EVENT) in first
    row = only_audit(first)
    assert (row.kind, row.event_id, row.participant_id, row.role, row.actor) == (
        AuditKind.JOIN,
        EVENT,
        "p7-1",
        "speaker",
        "system",
    )
    assert row.detail == {"call_id": "a", "dialled": "+18665550199", "number": ""}
    assert row.at == node.now and row.caller_id == "caller a"
    second = node.enter("b", "listener", hold=True, number="+19135550100")
    # The number the trunk vouched for goes in the row: the exports' caller id.
    assert only_audit(second).detail["number"] == "+19135550100"
    assert only_audit(second).caller_id == "caller b"
    assert not any(isinstance(c, OpenConference) for c in second)
    assert next(c for c in second if isinstance(c, JoinConference)).role is Role.LISTENER
    assert node.floor("p7-1") is Floor.SPEAKING and node.floor("p7-2") is Floor.LISTENING
    call = node.controller.call(EVENT)
    assert call is not None and call.state is ConferenceState.WAITING
    assert [m.state for m in call.active()] == [ParticipantState.HOLD] * 2
    assert node.controller.member("b") is call.members["p7-2"]


def test_a_caller_let_in_live_opens_a_conference_this_node_has_not_seen_start() -> None:
    node = Node()
    commands = node.enter("a", hold=False)
    assert [type(c) for c in commands[:2]] == [OpenConference, StartConference]
    call = node.controller.call(EVENT)
    assert call is not None and call.state is ConferenceState.LIVE
    assert call.active()[0].state is ParticipantState.CONNECTED


def test_the_lock_and_the_limit_turn_callers_away_at_the_door() -> None:
    node = Node(max_participants=2)
    node.act("lock", event_state=EventState.SCHEDULED)
    # Let in before the lock by the IVR, refused by the call itself.
    assert node.enter("a", "listener", hold=True) == [
        Farewell("a", PromptName.LOCKED, "event 7 is locked")
    ]
    assert node.controller.member("a") is None
    node.join("b", "speaker", hold=True)
    node.join("c", "speaker", hold=True)
    node.leave("b")  # a place is free again
    node.join("e", "speaker", hold=True)
    assert node.enter("d", "speaker", hold=True) == [
        Farewell("d", PromptName.ENDED, "event 7 is full")
    ]


def test_entering_twice_is_a_bug() -> None:
    node = Node()
    node.join("a")
    with pytest.raises(ValueError):
        node.enter("a")


def test_leaving_writes_the_reason_and_clears_the_queue() -> None:
    node = Node()
    node.start()
    pid = node.join("a")
    node.keys("a", "*1")
    commands = node.leave("a", "BYE")
    assert commands[:2] == [LeaveConference(EVENT, pid, node.now), Changed(EVENT)]
    row = only_audit(commands)
    assert (row.kind, row.participant_id, row.role, row.detail) == (
        AuditKind.LEAVE,
        pid,
        None,
        {"reason": "BYE"},
    )
    assert node.queue() == [] and node.floor(pid) is Floor.LEFT
    # Leaving twice, or a leg that never joined: nothing.
    assert node.leave("a") == [] and node.leave("stranger") == []
    assert node.keys("a", "*1") == []


# -- the keypad -----------------------------------------------------------------------------------


def test_star_one_queues_a_listener_and_star_two_withdraws() -> None:
    node = Node()
    node.start()
    pid = node.join("a")
    node.clock.advance(3)
    commands = node.keys("a", "*1")
    assert commands[0] == Changed(EVENT)
    row = only_audit(commands)
    assert (row.kind, row.participant_id, row.caller_id, row.role, row.actor, row.at) == (
        AuditKind.QUEUE,
        pid,
        "caller a",
        None,
        "keypad",
        node.now,
    )
    assert commands[-1] == Whisper(EVENT, pid, PromptName.QUESTION_QUEUED)
    assert node.queue() == [pid]
    assert node.keys("a", "*1") == []  # queued already
    commands = node.keys("a", "*2")
    assert only_audit(commands).kind is AuditKind.WITHDRAW
    assert commands[-1] == Whisper(EVENT, pid, PromptName.QUESTION_WITHDRAWN)
    assert node.queue() == []
    assert node.keys("a", "*2") == []  # not queued


def test_star_six_toggles_a_speakers_mute_and_does_nothing_for_a_listener() -> None:
    node = Node()
    node.start()
    ceo = node.join("ceo", "speaker")
    node.join("analyst")
    commands = node.keys("ceo", "*6")
    assert commands[0] == SetMuted(EVENT, ceo, True)
    row = only_audit(commands)
    assert (row.kind, row.role, row.actor) == (AuditKind.MUTE, "speaker", "keypad")
    assert commands[-1] == Whisper(EVENT, ceo, PromptName.MUTED)
    commands = node.keys("ceo", "*6")
    assert commands[0] == SetMuted(EVENT, ceo, False)
    assert only_audit(commands).kind is AuditKind.UNMUTE
    assert commands[-1] == Whisper(EVENT, ceo, PromptName.UNMUTED)
    assert node.keys("analyst", "*6") == []
    assert node.keys("ceo", "*1") == []  # a speaker has the floor already


def test_keys_outside_a_command_do_nothing() -> None:
    node = Node()
    node.start()
    pid = node.join("a")
    assert node.keys("a", "1") == []  # no "*" first
    assert node.keys("a", "*9") == []  # no such command
    assert node.keys("a", "*#1") == []  # the "*" was spent on "#"
    assert node.queue() == []
    # A second "*" starts the command over.
    assert only_audit(node.keys("a", "**1")).kind is AuditKind.QUEUE
    assert node.queue() == [pid]
    assert node.keys("stranger", "*1") == []


HOW_TO_STAND: dict[Floor, tuple[str, str]] = {
    # the role to join in, and the moves that bring the caller to the floor
    Floor.LISTENING: ("listener", ""),
    Floor.QUEUED: ("listener", "*1"),
    Floor.ON_AIR: ("listener", "open_line"),
    Floor.SPEAKING: ("speaker", ""),
}


@pytest.mark.parametrize("floor", list(HOW_TO_STAND))
@pytest.mark.parametrize("sequence", sorted(KEYPAD))
def test_every_keypad_command_applies_where_its_table_says(floor: Floor, sequence: str) -> None:
    node = Node()
    node.start()
    role, setup = HOW_TO_STAND[floor]
    pid = node.join("a", role)
    if setup == "*1":
        node.keys("a", "*1")
    elif setup == "open_line":
        node.act("open_line", pid)
    assert node.floor(pid) is floor
    before = node.snapshot()
    commands = node.keys("a", sequence)
    if floor in KEYPAD[sequence].floors:
        assert commands and Changed(EVENT) in commands and len(audits(commands)) == 1
        assert node.snapshot() != before
    else:
        assert commands == [] and node.snapshot() == before


def test_a_caller_on_the_air_mutes_themself_and_cannot_queue() -> None:
    node = Node()
    node.start()
    pid = node.join("a")
    node.keys("a", "*1")
    node.act("open_line", pid)
    assert node.keys("a", "*1") == []
    assert node.keys("a", "*6")[0] == SetMuted(EVENT, pid, True)


# -- the moderator --------------------------------------------------------------------------------


def test_the_moderator_table_covers_every_console_action() -> None:
    (literal,) = [Action.model_fields["action"].annotation]
    assert set(MODERATOR) == set(typing.get_args(literal))


def test_lock_and_unlock() -> None:
    node = Node()
    node.start()
    commands = node.act("lock")
    assert commands[-1] == Changed(EVENT)
    row = only_audit(commands)
    assert (row.kind, row.participant_id, row.actor) == (AuditKind.LOCK, None, "dana")
    call = node.controller.call(EVENT)
    assert call is not None and call.locked
    assert only_audit(node.act("unlock")).kind is AuditKind.UNLOCK
    assert not call.locked


def test_mute_all_mutes_the_speakers_who_talk_and_no_one_else() -> None:
    node = Node()
    node.start()
    a = node.join("a", "speaker")
    b = node.join("b", "speaker")
    node.join("c", "listener")
    node.keys("b", "*6")  # muted already
    commands = node.act("mute_all")
    assert [c for c in commands if isinstance(c, SetMuted)] == [SetMuted(EVENT, a, True)]
    assert [(r.kind, r.participant_id, r.role) for r in audits(commands)] == [
        (AuditKind.MUTE, a, "speaker")
    ]
    commands = node.act("unmute_all")
    assert [c for c in commands if isinstance(c, SetMuted)] == [
        SetMuted(EVENT, a, False),
        SetMuted(EVENT, b, False),
    ]
    assert [r.kind for r in audits(commands)] == [AuditKind.UNMUTE] * 2


def test_mute_and_unmute_one_participant() -> None:
    node = Node()
    node.start()
    pid = node.join("a", "speaker")
    commands = node.act("mute", pid)
    assert commands[:2] == [
        SetMuted(EVENT, pid, True),
        Whisper(EVENT, pid, PromptName.MUTED),
    ]
    row = only_audit(commands)
    assert (row.kind, row.participant_id, row.role, row.actor) == (
        AuditKind.MUTE,
        pid,
        "speaker",
        "dana",
    )
    commands = node.act("unmute", pid)
    assert commands[:2] == [SetMuted(EVENT, pid, False), Whisper(EVENT, pid, PromptName.UNMUTED)]


def test_the_question_queue_from_star_one_to_an_open_line_and_back() -> None:
    node = Node()
    node.start()
    a, b, c = node.join("a"), node.join("b"), node.join("c")
    for call_id in "abc":
        node.keys(call_id, "*1")
    assert node.queue() == [a, b, c]
    row = only_audit(node.act("move", c, position=0))
    assert (row.kind, row.detail) == (AuditKind.QUEUE_MOVE, {"position": 0})
    assert node.queue() == [c, a, b]
    row = only_audit(node.act("dequeue", a))
    assert (row.kind, row.actor) == (AuditKind.WITHDRAW, "dana")
    assert node.queue() == [c, b]
    commands = node.act("open_line", c)
    assert commands[:2] == [OpenLine(EVENT, c), Whisper(EVENT, c, PromptName.LINE_OPEN)]
    row = only_audit(commands)
    assert (row.kind, row.role) == (AuditKind.LINE_OPEN, "speaker")  # as they stand after it
    assert node.queue() == [b] and node.floor(c) is Floor.ON_AIR
    call = node.controller.call(EVENT)
    assert call is not None and call.line_open(c) and call.members[c].role is Role.SPEAKER
    commands = node.act("close_line", c)
    assert commands[:2] == [CloseLine(EVENT, c), Whisper(EVENT, c, PromptName.LINE_CLOSED)]
    assert (only_audit(commands).kind, only_audit(commands).role) == (
        AuditKind.LINE_CLOSE,
        "listener",
    )
    assert node.floor(c) is Floor.LISTENING and not call.line_open(c)
    # The moderator may open the line of a listener who never queued.
    assert node.act("open_line", a)[0] == OpenLine(EVENT, a)


def test_an_open_line_unmutes_and_mute_all_reaches_it() -> None:
    node = Node()
    node.start()
    pid = node.join("a")
    node.act("mute", pid)  # a listener may be marked muted too
    node.act("open_line", pid)
    call = node.controller.call(EVENT)
    assert call is not None and not call.members[pid].muted
    assert SetMuted(EVENT, pid, True) in node.act("mute_all")


def test_the_moderator_promotes_a_listener_and_moves_them_back_to_listen_only() -> None:
    node = Node()
    node.start()
    a, b = node.join("a"), node.join("b")
    node.keys("b", "*1")
    node.act("mute", a)  # a listener may be marked muted: a speaker starts unmuted
    commands = node.act("promote", a)
    assert commands[0] == OpenLine(EVENT, a)
    row = only_audit(commands)
    assert (row.kind, row.role, row.actor) == (AuditKind.ROLE, "speaker", "dana")
    call = node.controller.call(EVENT)
    assert call is not None
    member = call.members[a]
    assert member.role is Role.SPEAKER and not member.muted and member.may_talk
    # A speaker for good: no open line, never in the queue; a queued caller leaves it.
    assert node.floor(a) is Floor.SPEAKING and not call.line_open(a)
    node.act("promote", b)
    assert node.queue() == [] and node.floor(b) is Floor.SPEAKING
    commands = node.act("demote", a)
    assert commands[0] == CloseLine(EVENT, a)
    row = only_audit(commands)
    assert (row.kind, row.role) == (AuditKind.ROLE, "listener")
    assert member.role is Role.LISTENER and not member.may_talk
    assert node.floor(a) is Floor.LISTENING
    # A caller on the air is promoted from there.
    node.act("open_line", a)
    node.act("promote", a)
    assert node.floor(a) is Floor.SPEAKING and not call.line_open(a)


def test_promote_and_demote_refuse_what_does_not_apply() -> None:
    node = Node()
    node.start()
    listener, speaker = node.join("a"), node.join("s", role="speaker")
    with pytest.raises(BridgeError, match="is already a speaker"):
        node.act("promote", speaker)
    with pytest.raises(BridgeError, match="is already a listener"):
        node.act("demote", listener)
    call = node.controller.call(EVENT)
    assert call is not None
    call.members[speaker].role = Role.HOST
    with pytest.raises(BridgeError, match="is the host"):
        node.act("demote", speaker)


def test_disconnect_hangs_up_and_the_leave_carries_the_moderator() -> None:
    node = Node()
    node.start()
    pid = node.join("a")
    assert node.act("disconnect", pid) == [Disconnect("a", "disconnected by dana"), Changed(EVENT)]
    row = only_audit(node.leave("a", "disconnected by dana"))
    assert (row.kind, row.participant_id, row.detail) == (
        AuditKind.LEAVE,
        pid,
        {"reason": "disconnected by dana"},
    )


@pytest.mark.parametrize(
    ("action", "who", "message"),
    [
        ("mute", "p9", "p9 is not on the call"),
        ("disconnect", "p9", "p9 is not on the call"),
        ("mute", None, "mute needs a participant_id"),
        ("open_line", "speaker", "is already a speaker"),
        ("open_line", "on_air", "is already a speaker"),
        ("close_line", "listener", "has no open line"),
        ("close_line", "queued", "has no open line"),
        ("dequeue", "listener", "is not in the question queue"),
        ("move", "on_air", "is not in the question queue"),
        ("mute", "gone", "is not on the call"),
        ("dequeue", "gone", "is not on the call"),
    ],
)
def test_refused_actions_say_why_and_change_nothing(
    action: str, who: str | None, message: str
) -> None:
    node = Node()
    node.start()
    people = {
        "speaker": node.join("s", "speaker"),
        "listener": node.join("l"),
        "queued": node.join("q"),
        "on_air": node.join("o"),
        "gone": node.join("g"),
        "p9": "p9",
    }
    node.keys("q", "*1")
    node.keys("g", "*1")
    node.act("open_line", people["on_air"])
    node.leave("g")
    before = node.snapshot()
    with pytest.raises(BridgeError, match=message):
        node.act(action, people[who] if who is not None else None)
    assert node.snapshot() == before


def test_moderating_before_anyone_dialled_opens_the_call() -> None:
    node = Node()
    with pytest.raises(ValueError):
        node.act("lock")  # the adapter must say what the store holds (``wants_record``)
    assert node.controller.wants_record(EVENT)
    with pytest.raises(BridgeError, match="the call has ended"):
        node.act("lock", event_state=EventState.ENDED)
    with pytest.raises(BridgeError, match="p1 is not on the call"):
        node.act("mute", "p1", event_state=EventState.SCHEDULED)
    assert node.controller.call(EVENT) is None  # refused: nothing opened
    commands = node.act("lock", event_state=EventState.SCHEDULED)
    assert commands[0] == OpenConference(EVENT)
    assert not node.controller.wants_record(EVENT)


def test_moderating_an_ended_call_is_refused() -> None:
    node = Node()
    node.start()
    node.end()
    assert node.controller.wants_record(EVENT)
    with pytest.raises(BridgeError, match="the call has ended; there is nothing to moderate"):
        node.act("lock", event_state=EventState.SCHEDULED)


# -- starting and ending ----------------------------------------------------------------------


def test_starting_connects_the_held_and_sets_the_event_live() -> None:
    node = Node(START - timedelta(minutes=10))
    pid = node.join("a", hold=True)
    commands = node.start()
    assert commands[:3] == [
        StartConference(EVENT),
        Changed(EVENT),
        SetEventState(EVENT, EventState.LIVE),
    ]
    row = only_audit(commands)
    assert (row.kind, row.actor, row.participant_id) == (AuditKind.START, "operator", None)
    call = node.controller.call(EVENT)
    assert call is not None and call.members[pid].state is ParticipantState.CONNECTED
    # A fresh call opens its conference first.
    assert Node().start()[0] == OpenConference(EVENT)


def test_a_call_starts_once() -> None:
    node = Node()
    with pytest.raises(BridgeError, match="the call is live; it cannot start again"):
        node.start(EventState.LIVE)
    node.start()
    before = node.snapshot()
    # The store still says scheduled, but this node has started it.
    with pytest.raises(BridgeError, match="cannot go from live to live"):
        node.start()
    assert node.snapshot() == before


def test_the_desk_is_told_when_the_call_ran_and_how_long_each_question_waits() -> None:
    node = Node()
    node.start()
    started = node.now
    node.clock.advance(30)
    pid = node.join("b")
    node.keys("b", "*1")
    pressed = node.now
    node.clock.advance(5)
    node.controller.handle(
        QuestionWritten(EVENT, "q1", "Ana Ruiz, Fjord Capital", "Capex?", node.now)
    )
    written = node.now
    call = node.controller.call(EVENT)
    assert call is not None and (call.started_at, call.ended_at) == (started, None)
    entries = [queue_entry(call, key, i) for i, key in enumerate(call.queue.order)]
    assert [(e.participant_id, e.asked_at) for e in entries] == [(pid, pressed), ("q1", written)]
    node.clock.advance(60)
    node.end()
    assert (call.started_at, call.ended_at) == (started, node.now)


def test_ending_says_goodbye_to_everyone_and_ends_the_event() -> None:
    node = Node()
    node.start()
    a = node.join("a", "speaker")
    node.join("b")
    node.keys("b", "*1")
    node.leave("b")
    c = node.join("c")
    node.clock.advance(60)
    commands = node.end()
    leaves = audits(commands)[:-1]
    assert [(r.kind, r.participant_id, r.detail, r.at) for r in leaves] == [
        (AuditKind.LEAVE, a, {"reason": "call ended"}, node.now),
        (AuditKind.LEAVE, c, {"reason": "call ended"}, node.now),
    ]
    assert [c for c in commands if isinstance(c, Farewell)] == [
        Farewell("a", PromptName.CONFERENCE_ENDING),
        Farewell("c", PromptName.CONFERENCE_ENDING),
    ]
    assert commands[-4:] == [
        EndConference(EVENT, node.now),
        Changed(EVENT),
        SetEventState(EVENT, EventState.ENDED),
        audits(commands)[-1],
    ]
    assert (audits(commands)[-1].kind, audits(commands)[-1].actor) == (AuditKind.END, "operator")
    call = node.controller.call(EVENT)
    assert call is not None and call.on_call == 0 == len(call.active())
    # The farewells end the legs: nothing more is written for them.
    assert node.leave("a") == [] and node.leave("c") == []
    with pytest.raises(BridgeError, match="the call has already ended"):
        node.end(EventState.ENDED)


def test_ending_a_call_nobody_dialled_ends_the_event_only() -> None:
    commands = Node().end(EventState.SCHEDULED)
    assert [type(c) for c in commands] == [Changed, SetEventState, RecordAudit]


def test_a_caller_after_the_end_opens_a_new_conference() -> None:
    node = Node()
    node.start()
    node.join("a")
    node.end()
    commands = node.enter("b", hold=False)
    assert commands[0] == OpenConference(EVENT)
    assert next(c for c in commands if isinstance(c, JoinConference)).participant_id == "p7-1"


def test_audit_kinds_are_call_log_kinds() -> None:
    assert {kind.value for kind in AuditKind} <= {kind.value for kind in LogKind}


def test_the_controller_needs_no_event_loop_socket_or_store() -> None:
    """Edge and origin nodes share it: importing it brings in none of the I/O."""
    probe = (
        "import sys, callbridge.bridge.controller\n"
        "print(' '.join(sorted(m for m in sys.modules if m in {'asyncio', 'sqlalchemy'}"
        " or m.startswith(('callbridge.store', 'callbridge.sip', 'callbridge.bridge.service',"
        " 'callbridge.bridge.rtp_transport', 'callbridge.webcast')))))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.split() == []


def test_the_moderator_names_a_participant_for_the_console_and_the_transcript() -> None:
    node = Node()
    node.start()
    pid = node.join("a", "speaker")
    commands = node.act("name", pid, name="Mark Chen, Chief Financial Officer")
    assert commands[0] == NameParticipant(EVENT, pid, "Mark Chen, Chief Financial Officer")
    row = only_audit(commands)
    assert (row.kind, row.participant_id, row.actor, row.detail) == (
        AuditKind.NAME,
        pid,
        "dana",
        {"name": "Mark Chen, Chief Financial Officer"},
    )
    call = node.controller.call(EVENT)
    assert call is not None and call.member(pid).name == "Mark Chen, Chief Financial Officer"
    assert LogKind(AuditKind.NAME.value) is LogKind.NAME  # the call log stores the row


def test_naming_needs_a_name_and_someone_on_the_call() -> None:
    node = Node()
    node.start()
    pid = node.join("a", "speaker")
    before = node.snapshot()
    with pytest.raises(BridgeError, match="needs the participant's name"):
        node.act("name", pid)
    with pytest.raises(BridgeError, match="not on the call"):
        node.act("name", "p1-99", name="Nobody")
    assert node.snapshot() == before


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ("   ", "cannot be blank"),
        ("Mark\u200bChen", "control characters"),
        ("Mark\x07Chen", "control characters"),
        ("x" * 101, "at most 100 characters"),
    ],
)
def test_a_name_is_plain_text_of_bounded_length(given: str, refusal: str) -> None:
    with pytest.raises(ValidationError, match=refusal):
        Action(action="name", participant_id="p1-1", name=given)


def test_a_names_spacing_is_tidied_and_markup_kept_as_text() -> None:
    action = Action(action="name", participant_id="p1-1", name="  Mark   <b>Chen</b>\n")
    assert action.name == "Mark <b>Chen</b>"  # the console and exports show it as text


# -- written questions ----------------------------------------------------------------------------


def write(node: Node, qid: str, text: str = "What drove the margin?") -> list[Command]:
    return node.controller.handle(
        QuestionWritten(EVENT, qid, "Ana Ruiz, Fjord Capital", text, node.now)
    )


def question_act(node: Node, action: str, qid: str, position: int | None = None) -> list[Command]:
    return node.controller.handle(
        Moderate(
            EVENT,
            Action(action=action, question_id=qid, position=position),  # type: ignore[arg-type]
            "dana",
            node.now,
        )
    )


def test_a_written_question_waits_with_the_callers_and_is_answered() -> None:
    node = Node()
    node.start()
    caller = node.join("a")
    node.keys("a", "*1")
    commands = write(node, "q7")
    assert Changed(EVENT) in commands
    row = only_audit(commands)
    assert (row.kind, row.actor, row.detail) == (
        AuditKind.QUESTION_WRITTEN,
        "web",
        {"question_id": "q7", "asker": "Ana Ruiz, Fjord Capital"},
    )
    assert node.queue() == [caller, "q7"]
    moved = question_act(node, "move_question", "q7", 0)
    assert node.queue() == ["q7", caller]
    assert moved[0] == SetQuestionState(EVENT, "q7", "waiting", node.now)
    read = question_act(node, "read_out", "q7")
    assert read[0] == SetQuestionState(EVENT, "q7", "reading", node.now)
    assert only_audit(read).kind is AuditKind.QUESTION_READ
    answered = question_act(node, "answer", "q7")
    assert answered[0] == SetQuestionState(EVENT, "q7", "answered", node.now)
    assert only_audit(answered).kind is AuditKind.QUESTION_ANSWERED
    assert node.queue() == [caller]


def test_a_dismissed_question_leaves_and_cannot_be_answered_after() -> None:
    node = Node()
    node.start()
    write(node, "q1")
    dismissed = question_act(node, "dismiss", "q1")
    assert dismissed[0] == SetQuestionState(EVENT, "q1", "dismissed", node.now)
    before = node.snapshot()
    with pytest.raises(BridgeError, match="cannot be answer"):
        question_act(node, "answer", "q1")
    assert node.snapshot() == before


def test_questions_are_taken_while_the_call_is_live_only() -> None:
    node = Node()
    with pytest.raises(BridgeError, match="while the call is live"):
        write(node, "q1")
    node.start()
    node.end()
    with pytest.raises(BridgeError, match="while the call is live"):
        write(node, "q2")


def test_a_question_action_needs_a_question_of_this_call() -> None:
    node = Node()
    node.start()
    pid = node.join("a")
    with pytest.raises(BridgeError, match="needs the question_id"):
        question_act(node, "answer", "q404")
    with pytest.raises(BridgeError, match="needs the question_id"):
        question_act(node, "read_out", pid)  # a caller is not a written question
