"""The bridge's decisions about its calls, sans-IO: events and ``now`` in, commands out.

Who may join and how (the passcode's role, the event's window, the lock),
who is on which call, what the keypad commands in a call do (``KEYPAD``),
what the moderator's actions do (``MODERATOR``), the question queue
(``bridge.queue``), naming a listed speaker as they join, starting and
ending a call: all of it is decided here, by one ``CallController`` per
node. It knows callers by their SIP Call-ID and events by id; it holds no
sockets, runs no clock of its own, never reads or writes the store.
``bridge.service.Bridge`` feeds it what happens (``handle(event)``, the
events of ``bridge.commands``) and carries out the commands it returns, in
order: joining a leg to the media conference, whispering a prompt, hanging
up, writing the call log, setting the event's state in the store.

Every event carries ``now``, an aware ``datetime``: the windows are on the
wall clock and every audit row is stamped with it, so a test runs the
controller on a clock it sets itself.

A moderator's action the call cannot take raises ``BridgeError`` with the
reason for the operator, before anything has changed. A keypad press that
does not apply where the caller stands (``*1`` from a speaker, ``*2`` from
someone not queued) does nothing, as a phone menu does.

Over the house's ~500 lines, by one small handler per keypad and console
command beside its table (and the speaker list's match, beside the naming);
the vocabulary is in ``bridge.commands``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import callbridge.bridge.commands as cmd
from callbridge.bridge.control import Action as ModeratorAction
from callbridge.bridge.control import BridgeError, ParticipantState, Role
from callbridge.bridge.queue import (
    Floor,
    Move,
    QuestionQueue,
    QueueFull,
    QueueTransitionError,
)
from callbridge.events.phones import normalise_dialled
from callbridge.events.schema import EventState, Speaker
from callbridge.ivr.machine import Outcome
from callbridge.ivr.window import Window, WindowRules, conference_window
from callbridge.media.conference import MAX_PARTICIPANTS, ConferenceState
from callbridge.media.prompts import PromptName
from callbridge.replay.window import ReplayStatus, replay_window_of

# -- the calls as the controller sees them ----------------------------------------------------


@dataclass
class Member:
    """One caller on one call: who they are and where they stand (the mixer keeps only the leg)."""

    id: str
    call_id: str
    event_id: int
    role: Role
    caller_id: str
    state: ParticipantState
    muted: bool = False
    keypad: str = ""  # "*" while a keypad command is being keyed
    name: str | None = None  # as the moderator named them
    node: str | None = None  # on another node of the cascade (an edge), not here
    lost: bool = False  # left with their node (``LeftCall.lost``), not by hanging up
    registrant: cmd.Registrant | None = None  # who their personal PIN names
    joined_at: datetime | None = None
    left_at: datetime | None = None
    queued_at: datetime | None = None  # their last *1: the console shows how long they wait

    @property
    def may_talk(self) -> bool:
        """Whether the mix takes their audio (``media.conference.Participant.may_talk``)."""
        return self.role is not Role.LISTENER and not self.muted

    def audit(
        self, kind: cmd.AuditKind, now: datetime, actor: str, role: bool = True, **detail: object
    ) -> cmd.RecordAudit:
        """A call log row about this caller as they stand now (with their role, if ``role``)."""
        return cmd.RecordAudit(
            kind,
            now,
            self.event_id,
            self.id,
            caller_id=self.caller_id,
            role=self.role.value if role else None,
            actor=actor,
            detail=dict(detail),
        )


@dataclass
class WrittenQuestion:
    """A web listener's question, as the console shows it."""

    id: str
    asker: str
    text: str
    asked_at: datetime | None = None


# The call's own states: which may follow which.
CALL_TRANSITIONS: dict[ConferenceState, frozenset[ConferenceState]] = {
    ConferenceState.WAITING: frozenset({ConferenceState.LIVE, ConferenceState.ENDED}),
    ConferenceState.LIVE: frozenset({ConferenceState.ENDED}),
    ConferenceState.ENDED: frozenset(),
}


class Call:
    """One event's call: its state, lock, members and question queue."""

    def __init__(self, event_id: int, max_participants: int, tag: str = "") -> None:
        self.event_id = event_id
        self.tag = tag  # after every id given here: ids stay unique across the cascade's nodes
        self.state = ConferenceState.WAITING
        self.locked = False
        # When the operator started and ended it: the console's call timer.
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.members: dict[str, Member] = {}
        self.written: dict[str, WrittenQuestion] = {}
        self.queue = QuestionQueue(limit=max_participants)
        self.max_participants = max_participants
        self.on_call = 0  # len(active()), kept: a burst of joins asks it once each
        # Each registrant on the call (by listener id): their member's id (one PIN, one caller).
        self.registrants: dict[int, str] = {}
        self._ids = itertools.count(1)

    def active(self) -> list[Member]:
        """Everyone on the call now (held or connected), in the order they joined."""
        return [m for m in self.members.values() if m.state is not ParticipantState.LEFT]

    def member(self, participant_id: str) -> Member:
        """The participant, if still on the call; BridgeError otherwise."""
        member = self.members.get(participant_id)
        if member is None or member.state is ParticipantState.LEFT:
            raise BridgeError(f"{participant_id} is not on the call")
        return member

    def line_open(self, participant_id: str) -> bool:
        return self.queue.floor(participant_id) is Floor.ON_AIR

    def move(self, target: ConferenceState) -> None:
        """Change the call's state, as ``CALL_TRANSITIONS`` allows; BridgeError otherwise."""
        if target not in CALL_TRANSITIONS[self.state]:
            raise BridgeError(f"the conference cannot go from {self.state} to {target}")
        self.state = target
        if target is ConferenceState.LIVE:
            for member in self.active():
                member.state = ParticipantState.CONNECTED

    def add(
        self,
        call_id: str,
        role: Role,
        caller_id: str,
        participant_id: str | None = None,
        node: str | None = None,
        now: datetime | None = None,
        registrant: cmd.Registrant | None = None,
    ) -> Member:
        """Put a caller on the call, with ``participant_id`` if another node gave them one."""
        member = Member(
            registrant=registrant,
            id=participant_id or f"p{self.event_id}-{next(self._ids)}{self.tag}",
            node=node,
            call_id=call_id,
            event_id=self.event_id,
            role=role,
            caller_id=caller_id,
            joined_at=now,
            state=ParticipantState.CONNECTED
            if self.state is ConferenceState.LIVE
            else ParticipantState.HOLD,
        )
        self.members[member.id] = member
        if registrant is not None:
            self.registrants[registrant.listener_id] = member.id
        self.on_call += 1
        self.queue.arrive(member.id, speaking=role is not Role.LISTENER)
        return member

    def leave(self, member: Member, now: datetime | None = None) -> None:
        member.state = ParticipantState.LEFT
        member.left_at = now
        if member.registrant is not None:
            self.registrants.pop(member.registrant.listener_id, None)
        self.on_call -= 1
        self.queue.leave(member.id)


# -- the keypad: "*" then one key ---------------------------------------------------------------


def _raise_hand(call: Call, member: Member, now: datetime) -> list[cmd.Command]:
    try:
        call.queue.raise_hand(member.id)
    except QueueFull:
        return []
    member.queued_at = now
    return [
        cmd.Changed(call.event_id),
        member.audit(cmd.AuditKind.QUEUE, now, "keypad", role=False),
        cmd.Whisper(call.event_id, member.id, PromptName.QUESTION_QUEUED),
    ]


def _withdraw(call: Call, member: Member, now: datetime) -> list[cmd.Command]:
    call.queue.withdraw(member.id)
    return [
        cmd.Changed(call.event_id),
        member.audit(cmd.AuditKind.WITHDRAW, now, "keypad", role=False),
        cmd.Whisper(call.event_id, member.id, PromptName.QUESTION_WITHDRAWN),
    ]


def _toggle_mute(call: Call, member: Member, now: datetime) -> list[cmd.Command]:
    member.muted = not member.muted
    muted = member.muted
    return [
        cmd.SetMuted(call.event_id, member.id, muted),
        cmd.Changed(call.event_id),
        member.audit(cmd.AuditKind.MUTE if muted else cmd.AuditKind.UNMUTE, now, "keypad"),
        cmd.Whisper(call.event_id, member.id, PromptName.MUTED if muted else PromptName.UNMUTED),
    ]


@dataclass(frozen=True)
class KeypadCommand:
    """What a key sequence does, and where on the floor the caller must stand for it to."""

    floors: frozenset[Floor]
    run: Callable[[Call, Member, datetime], list[cmd.Command]]


KEYPAD: dict[str, KeypadCommand] = {
    "*1": KeypadCommand(frozenset({Floor.LISTENING}), _raise_hand),  # queue for a question
    "*2": KeypadCommand(frozenset({Floor.QUEUED}), _withdraw),  # leave the queue
    # Mute or unmute oneself: whoever may talk (a listener is silent by their role).
    "*6": KeypadCommand(frozenset({Floor.SPEAKING, Floor.ON_AIR}), _toggle_mute),
}
KEYPAD_PREFIX = "*"

# -- the moderator's actions --------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """One moderator's action as its handler sees it."""

    call: Call
    action: ModeratorAction
    actor: str
    now: datetime
    target: Member | None  # the participant it names, on the call (checked)

    @property
    def member(self) -> Member:
        assert self.target is not None, "MODERATOR says this action names a participant"
        return self.target

    def refuse_unless(self, move: Move, reason: str) -> None:
        """BridgeError(reason) unless the queue allows ``move`` for the participant now."""
        if not self.call.queue.allows(self.member.id, move):
            raise BridgeError(f"{self.member.id} {reason}")


def _lock(order: Order) -> list[cmd.Command]:
    call = order.call
    call.locked = order.action.action == "lock"
    kind = cmd.AuditKind.LOCK if call.locked else cmd.AuditKind.UNLOCK
    return [cmd.RecordAudit(kind, order.now, call.event_id, actor=order.actor)]


def _mute_all(order: Order) -> list[cmd.Command]:
    """Every speaker, callers on the air among them, muted or unmuted; never the host."""
    muted = order.action.action == "mute_all"
    kind = cmd.AuditKind.MUTE if muted else cmd.AuditKind.UNMUTE
    commands: list[cmd.Command] = []
    for member in order.call.active():
        if member.role is Role.SPEAKER and member.muted != muted:
            member.muted = muted
            commands.append(cmd.SetMuted(member.event_id, member.id, muted))
            commands.append(member.audit(kind, order.now, order.actor))
    return commands


def _mute(order: Order) -> list[cmd.Command]:
    member = order.member
    member.muted = muted = order.action.action == "mute"
    return [
        cmd.SetMuted(member.event_id, member.id, muted),
        cmd.Whisper(member.event_id, member.id, PromptName.MUTED if muted else PromptName.UNMUTED),
        member.audit(cmd.AuditKind.MUTE if muted else cmd.AuditKind.UNMUTE, order.now, order.actor),
    ]


def _open_line(order: Order) -> list[cmd.Command]:
    member = order.member
    order.refuse_unless(Move.OPEN_LINE, f"is already a {member.role.value}")
    order.call.queue.open_line(member.id)
    member.role = Role.SPEAKER
    member.muted = False
    return [
        cmd.OpenLine(member.event_id, member.id),
        cmd.Whisper(member.event_id, member.id, PromptName.LINE_OPEN),
        member.audit(cmd.AuditKind.LINE_OPEN, order.now, order.actor),
    ]


def _close_line(order: Order) -> list[cmd.Command]:
    member = order.member
    order.refuse_unless(Move.CLOSE_LINE, "has no open line")
    order.call.queue.close_line(member.id)
    member.role = Role.LISTENER
    return [
        cmd.CloseLine(member.event_id, member.id),
        cmd.Whisper(member.event_id, member.id, PromptName.LINE_CLOSED),
        member.audit(cmd.AuditKind.LINE_CLOSE, order.now, order.actor),
    ]


def _promote(order: Order) -> list[cmd.Command]:
    """A listener becomes a speaker for good; a speaker (never the host) listens only again.

    The mix follows as for an open line (``OpenLine``/``CloseLine``: a
    cascade's origin tells the caller's edge), and the role is audited.
    """
    member, promote = order.member, order.action.action == "promote"
    if member.role is Role.HOST:
        raise BridgeError(f"{member.id} is the host")
    move, role = (Move.PROMOTE, Role.SPEAKER) if promote else (Move.DEMOTE, Role.LISTENER)
    order.refuse_unless(move, f"is already a {member.role.value}")
    (order.call.queue.promote if promote else order.call.queue.demote)(member.id)
    member.role, member.muted = role, False
    line = cmd.OpenLine if promote else cmd.CloseLine
    return [
        line(member.event_id, member.id),
        member.audit(cmd.AuditKind.ROLE, order.now, order.actor),
    ]


def _dequeue(order: Order) -> list[cmd.Command]:
    order.refuse_unless(Move.DEQUEUE, "is not in the question queue")
    order.call.queue.dequeue(order.member.id)
    return [order.member.audit(cmd.AuditKind.WITHDRAW, order.now, order.actor)]


def _reorder(order: Order) -> list[cmd.Command]:
    order.refuse_unless(Move.REORDER, "is not in the question queue")
    position = order.action.position or 0
    order.call.queue.reorder(order.member.id, position)
    return [order.member.audit(cmd.AuditKind.QUEUE_MOVE, order.now, order.actor, position=position)]


def _named(member: Member, name: str, now: datetime, actor: str) -> list[cmd.Command]:
    """Name a caller: the console, the manifest, the transcript and the captions follow."""
    member.name = name
    return [
        cmd.NameParticipant(member.event_id, member.id, name),
        member.audit(cmd.AuditKind.NAME, now, actor, name=name),
    ]


def _name(order: Order) -> list[cmd.Command]:
    name = order.action.name
    if name is None:
        raise BridgeError("name needs the participant's name")
    return _named(order.member, name, order.now, order.actor)


SPEAKER_LIST = "speaker list"  # the actor of a name the event's speaker list gave
REGISTRATION = "registration"  # the actor of a name a registrant's personal PIN gave


def _on_call(call: Call, registrant: cmd.Registrant | None) -> bool:
    """Whether the registrant a personal PIN names is on the call already."""
    return registrant is not None and registrant.listener_id in call.registrants


def listed_speaker(speakers: tuple[Speaker, ...], number: str | None) -> Speaker | None:
    """The one listed speaker whose phone is ``number`` (a trunk's user part), or None.

    None, too, when the number is not a phone number or more than one
    speaker lists it: a guess would put the wrong name in the transcript.
    """
    if number is None:
        return None
    e164 = normalise_dialled(number)
    if e164 is None:
        return None
    found = [s for s in speakers if s.phone == e164]
    return found[0] if len(found) == 1 else None


# What the moderator's action does to a written question, and the row it writes.
_QUESTION_MOVES: dict[str, tuple[Move, cmd.AuditKind]] = {
    "read_out": (Move.READ_OUT, cmd.AuditKind.QUESTION_READ),
    "answer": (Move.ANSWER, cmd.AuditKind.QUESTION_ANSWERED),
    "dismiss": (Move.DISMISS, cmd.AuditKind.QUESTION_DISMISSED),
    "move_question": (Move.REORDER, cmd.AuditKind.QUEUE_MOVE),
}


def _settle_question(order: Order) -> list[cmd.Command]:
    call, kind = order.call, order.action.action
    qid = order.action.question_id
    question = call.written.get(qid or "")
    if qid is None or question is None:
        raise BridgeError(f"{kind} needs the question_id of a written question on this call")
    move, audit = _QUESTION_MOVES[kind]
    position = order.action.position or 0
    try:
        if move is Move.READ_OUT:
            call.queue.read_out(qid)
        elif move is Move.REORDER:
            call.queue.reorder(qid, position)
        else:
            call.queue.settle(qid, move)
    except QueueTransitionError as error:
        raise BridgeError(f"question {qid} cannot be {kind.replace('_', ' ')}: {error}") from None
    asked = call.queue.asked(qid)
    assert asked is not None
    detail: dict[str, object] = {"question_id": qid, "asker": question.asker}
    if move is Move.REORDER:
        detail["position"] = position
    return [
        cmd.SetQuestionState(call.event_id, qid, asked.value, order.now),
        cmd.RecordAudit(audit, order.now, call.event_id, actor=order.actor, detail=detail),
    ]


def _disconnect(order: Order) -> list[cmd.Command]:
    # The leave is written once the leg has ended (``LeftCall``), with this reason.
    return [cmd.Disconnect(order.member.call_id, f"disconnected by {order.actor}")]


@dataclass(frozen=True)
class ModeratorCommand:
    """What a console action does, and whether it names a participant."""

    names_participant: bool
    run: Callable[[Order], list[cmd.Command]]


MODERATOR: dict[str, ModeratorCommand] = {
    "lock": ModeratorCommand(False, _lock),
    "unlock": ModeratorCommand(False, _lock),
    "mute_all": ModeratorCommand(False, _mute_all),
    "unmute_all": ModeratorCommand(False, _mute_all),
    "mute": ModeratorCommand(True, _mute),
    "unmute": ModeratorCommand(True, _mute),
    "open_line": ModeratorCommand(True, _open_line),
    "close_line": ModeratorCommand(True, _close_line),
    "promote": ModeratorCommand(True, _promote),
    "demote": ModeratorCommand(True, _promote),
    "dequeue": ModeratorCommand(True, _dequeue),
    "move": ModeratorCommand(True, _reorder),
    "disconnect": ModeratorCommand(True, _disconnect),
    "name": ModeratorCommand(True, _name),
    **{kind: ModeratorCommand(False, _settle_question) for kind in _QUESTION_MOVES},
}

# -- who may join -------------------------------------------------------------------------------

# A caller turned away as they enter (``_enter``'s Farewell): what their IVR is answered.
ENTRY_REFUSALS: dict[PromptName, Outcome] = {
    PromptName.LOCKED: Outcome.LOCKED,
    PromptName.PIN_IN_USE: Outcome.PIN_IN_USE,
}
# Who is refused while the call is locked: everyone but the speakers.
_LOCKED_OUT = frozenset({cmd.CallerKind.LISTENER, cmd.CallerKind.REGISTRANT})

# The conference window, where it turns a valid live-call passcode away.
WINDOW_REFUSALS: dict[Window, Outcome] = {
    Window.TOO_EARLY: Outcome.NOT_STARTED,
    Window.CLOSED: Outcome.ENDED,
}
# A replay code, by where the replay window stands.
REPLAY_OUTCOMES: dict[ReplayStatus, Outcome] = {
    ReplayStatus.OPEN: Outcome.JOINED,
    ReplayStatus.NOT_YET: Outcome.REPLAY_NOT_YET,
    ReplayStatus.EXPIRED: Outcome.EXPIRED,
    ReplayStatus.NOT_OFFERED: Outcome.EXPIRED,
}
_OVER = (EventState.ENDED, EventState.ARCHIVED)


class CallController:
    """Every call of one node, and the decisions about them."""

    # Whether a speaker from a listed phone is named here as they join: where
    # the call log and the console are (not on a cascade's edge).
    names_listed_speakers = True

    def __init__(
        self, max_participants: int = MAX_PARTICIPANTS, window: WindowRules | None = None
    ) -> None:
        self.max_participants = max_participants
        self.window = window or WindowRules()
        self.calls: dict[int, Call] = {}
        self.tag = ""  # after every participant id (an edge's: "@" and its node id)
        self._member_of: dict[str, Member] = {}  # by Call-ID, until the leg ends
        # Each event's speaker list, as the store gave it with the last caller let in.
        self._speakers: dict[int, tuple[Speaker, ...]] = {}
        self._handlers: dict[type, Callable[[cmd.Event], list[cmd.Command]]] = {
            cmd.PasscodeMatched: self._admit,  # type: ignore[dict-item]
            cmd.Admit: self._admit_and_enter,  # type: ignore[dict-item]
            cmd.EnterCall: self._enter,  # type: ignore[dict-item]
            cmd.LeftCall: self._left,  # type: ignore[dict-item]
            cmd.KeyPressed: self._key,  # type: ignore[dict-item]
            cmd.Moderate: self._moderate,  # type: ignore[dict-item]
            cmd.StartCall: self._start,  # type: ignore[dict-item]
            cmd.EndCall: self._end,  # type: ignore[dict-item]
            cmd.QuestionWritten: self._written,  # type: ignore[dict-item]
        }

    def handle(self, event: cmd.Event) -> list[cmd.Command]:
        """Feed one event; returns the commands to carry out, in order.

        Raises ``BridgeError`` (for the operator) when a moderator's action,
        a start or an end is refused; nothing has changed then.
        """
        return self._handlers[type(event)](event)

    def call(self, event_id: int) -> Call | None:
        """The event's call as the controller holds it (ended ones too), or None."""
        return self.calls.get(event_id)

    def wants_record(self, event_id: int) -> bool:
        """Whether a ``Moderate`` for the event needs the event's state from the store."""
        call = self.calls.get(event_id)
        return call is None or call.state is ConferenceState.ENDED

    def member(self, call_id: str) -> Member | None:
        """The caller with this Call-ID, from joining until their leg ends."""
        return self._member_of.get(call_id)

    def _open(self, event_id: int, commands: list[cmd.Command]) -> Call:
        """The event's call, opened anew (with its media conference) if none is open."""
        call = self.calls.get(event_id)
        if call is None or call.state is ConferenceState.ENDED:
            call = self.calls[event_id] = Call(event_id, self.max_participants, self.tag)
            commands.append(cmd.OpenConference(event_id))
        return call

    # -- handlers ---------------------------------------------------------------------------

    def _admit_and_enter(self, event: cmd.Admit) -> list[cmd.Command]:
        """``_admit``, then ``_enter`` for a caller let into a call: one question, one answer.

        A caller refused as they enter (the call locked or full meanwhile)
        is answered so, and their IVR says goodbye; the ``AnswerCaller`` is
        the last command either way.
        """
        (answer,) = self._admit(event)
        assert isinstance(answer, cmd.AnswerCaller)
        if answer.outcome is not Outcome.JOINED or answer.role is cmd.CallerKind.REPLAY:
            return [answer]
        entered = cmd.EnterCall(
            event.call_id,
            event.event_id,
            event.role,
            answer.hold,
            event.caller,
            event.dialled,
            event.now,
            number=event.number,
            registrant=event.registrant,
        )
        commands = self._enter(entered)
        refused = [
            c for c in commands if isinstance(c, cmd.Farewell) and c.call_id == event.call_id
        ]
        if refused:
            outcome = ENTRY_REFUSALS.get(refused[0].prompt, Outcome.ENDED)
            kept = [c for c in commands if c not in refused]
            return [*kept, cmd.AnswerCaller(event.call_id, outcome)]
        return [*commands, answer]

    def _admit(self, event: cmd.PasscodeMatched | cmd.Admit) -> list[cmd.Command]:
        def answer(outcome: Outcome, hold: bool = False) -> list[cmd.Command]:
            if outcome is not Outcome.JOINED:
                return [cmd.AnswerCaller(event.call_id, outcome)]
            return [cmd.AnswerCaller(event.call_id, outcome, event.event_id, event.role, hold)]

        record = event.record
        self._speakers[event.event_id] = tuple(record.speakers)
        if event.role == cmd.CallerKind.REPLAY:
            return answer(
                REPLAY_OUTCOMES[replay_window_of(record, event.replay_ready).status(event.now)]
            )
        window = conference_window(
            record.starts_at,
            timedelta(minutes=record.duration_minutes),
            record.state,
            event.now,
            self.window,
        )
        refusal = WINDOW_REFUSALS.get(window)
        if refusal is not None:
            return answer(refusal)
        if event.role is cmd.CallerKind.LISTENER and record.phone_requires_registration:
            # The public code opens nothing where the event asks for personal PINs.
            return answer(Outcome.REGISTRATION_REQUIRED)
        call = self.calls.get(event.event_id)
        if call is not None and call.locked and event.role in _LOCKED_OUT:
            return answer(Outcome.LOCKED)
        if call is not None and _on_call(call, event.registrant):
            return answer(Outcome.PIN_IN_USE)
        # Early callers wait on hold until the host starts the call.
        hold = window is Window.EARLY_HOLD and (
            call is None or call.state is ConferenceState.WAITING
        )
        return answer(Outcome.JOINED, hold)

    def _enter(self, event: cmd.EnterCall) -> list[cmd.Command]:
        if event.call_id in self._member_of:
            raise ValueError(f"call {event.call_id} is on a call already")
        commands: list[cmd.Command] = []
        call = self._open(event.event_id, commands)
        if not event.hold and call.state is ConferenceState.WAITING:
            # The event is live but this node has not seen it start (a restart
            # mid-call): open the conference rather than hold everyone.
            call.move(ConferenceState.LIVE)
            commands.append(cmd.StartConference(event.event_id))
        role = Role.SPEAKER if event.role == cmd.CallerKind.SPEAKER else Role.LISTENER
        if call.locked and role is Role.LISTENER:
            return [
                *commands,
                cmd.Farewell(event.call_id, PromptName.LOCKED, f"event {call.event_id} is locked"),
            ]
        if call.on_call >= call.max_participants:
            return [
                *commands,
                cmd.Farewell(event.call_id, PromptName.ENDED, f"event {call.event_id} is full"),
            ]
        if _on_call(call, event.registrant):
            # A PIN works once at a time: the second caller on it is refused,
            # the one on the call stays (a PIN passed around must not cut them off).
            reason = f"registrant {event.registrant.listener_id if event.registrant else ''}"
            return [
                *commands,
                cmd.Farewell(event.call_id, PromptName.PIN_IN_USE, f"{reason} is on the call"),
            ]
        member = self._member_of[event.call_id] = call.add(
            event.call_id,
            role,
            event.caller,
            event.participant_id,
            event.node,
            event.now,
            event.registrant,
        )
        joined: dict[str, Any] = {}
        if event.registrant is not None:
            # The exports look the registrant up by this (name, firm, email as they
            # stand then: a registrant deleted since is shown anonymised).
            joined["registrant"] = event.registrant.listener_id
        commands += [
            cmd.JoinConference(event.call_id, event.event_id, member.id, role, event.now),
            cmd.Changed(event.event_id),
            member.audit(
                cmd.AuditKind.JOIN,
                event.now,
                "system",
                call_id=event.call_id,
                dialled=event.dialled or "",
                number=event.number or "",  # as the trunk asserted it: the exports' number
                **joined,
            ),
        ]
        # A registrant is named by their registration as they join: the
        # console, the queue, the recording's manifest and the captions.
        if event.registrant is not None and self.names_listed_speakers:
            commands += _named(member, event.registrant.label, event.now, REGISTRATION)
        # A speaker calling from a listed number is named as they join, as
        # the console would name them. Only the speaker passcode names: the
        # list says who speaks, and a listener is heard by no transcript.
        if role is Role.SPEAKER and self.names_listed_speakers:
            listed = listed_speaker(self._speakers.get(event.event_id, ()), event.number)
            if listed is not None:
                commands += _named(member, listed.label, event.now, SPEAKER_LIST)
        return commands

    def _left(self, event: cmd.LeftCall) -> list[cmd.Command]:
        member = self._member_of.pop(event.call_id, None)
        call = self.calls.get(member.event_id) if member is not None else None
        if member is None or call is None or member.state is ParticipantState.LEFT:
            return []
        member.lost = event.lost
        call.leave(member, event.now)
        return [
            cmd.LeaveConference(call.event_id, member.id, event.now),
            cmd.Changed(call.event_id),
            member.audit(cmd.AuditKind.LEAVE, event.now, "system", role=False, reason=event.reason),
        ]

    def _key(self, event: cmd.KeyPressed) -> list[cmd.Command]:
        member = self._member_of.get(event.call_id)
        call = self.calls.get(member.event_id) if member is not None else None
        if member is None or call is None or member.state is ParticipantState.LEFT:
            return []
        if event.key == KEYPAD_PREFIX:
            member.keypad = KEYPAD_PREFIX
            return []
        sequence, member.keypad = member.keypad + event.key, ""
        command = KEYPAD.get(sequence)
        if command is None or call.queue.floor(member.id) not in command.floors:
            return []
        return command.run(call, member, event.now)

    def _moderate(self, event: cmd.Moderate) -> list[cmd.Command]:
        kind = event.action.action
        command = MODERATOR.get(kind)
        if command is None:
            raise BridgeError(f"unknown action {kind}")
        call = self.calls.get(event.event_id)
        if call is None or call.state is ConferenceState.ENDED:
            if event.event_state is None:
                raise ValueError("moderating a call not open here needs the event's state")
            if call is not None or event.event_state in _OVER:
                raise BridgeError("the call has ended; there is nothing to moderate")
        target: Member | None = None
        if command.names_participant:
            pid = event.action.participant_id
            if pid is None:
                raise BridgeError(f"{kind} needs a participant_id")
            if call is None:
                raise BridgeError(f"{pid} is not on the call")
            target = call.member(pid)
        # The handler refuses, if it does, before it changes anything.
        opened: list[cmd.Command] = []
        call = self._open(event.event_id, opened)
        order = Order(call, event.action, event.actor, event.now, target)
        return [*opened, *command.run(order), cmd.Changed(event.event_id)]

    def _written(self, event: cmd.QuestionWritten) -> list[cmd.Command]:
        call = self.calls.get(event.event_id)
        if call is None or call.state is not ConferenceState.LIVE:
            raise BridgeError("questions are taken while the call is live")
        try:
            call.queue.ask_in_writing(event.question_id)
        except QueueFull:
            raise BridgeError("the question queue is full; try again in a while") from None
        call.written[event.question_id] = WrittenQuestion(
            event.question_id, event.asker, event.text, event.now
        )
        return [
            cmd.Changed(event.event_id),
            cmd.RecordAudit(
                cmd.AuditKind.QUESTION_WRITTEN,
                event.now,
                event.event_id,
                actor="web",
                detail={"question_id": event.question_id, "asker": event.asker},
            ),
        ]

    def _start(self, event: cmd.StartCall) -> list[cmd.Command]:
        if event.event_state is not EventState.SCHEDULED:
            raise BridgeError(f"the call is {event.event_state.value}; it cannot start again")
        commands: list[cmd.Command] = []
        call = self._open(event.event_id, commands)
        # A call already live here refuses (a fresh one cannot): nothing has changed then.
        call.move(ConferenceState.LIVE)
        call.started_at = event.now
        return [
            *commands,
            cmd.StartConference(event.event_id),
            cmd.Changed(event.event_id),
            cmd.SetEventState(event.event_id, EventState.LIVE),
            cmd.RecordAudit(cmd.AuditKind.START, event.now, event.event_id, actor="operator"),
        ]

    def _end(self, event: cmd.EndCall) -> list[cmd.Command]:
        if event.event_state in _OVER:
            raise BridgeError(f"the call has already {event.event_state.value}")
        commands: list[cmd.Command] = []
        call = self.calls.get(event.event_id)
        if call is not None and call.state is not ConferenceState.ENDED:
            remaining = call.active()
            call.move(ConferenceState.ENDED)
            call.ended_at = event.now
            for member in remaining:
                call.leave(member, event.now)
                commands.append(
                    member.audit(
                        cmd.AuditKind.LEAVE, event.now, "system", role=False, reason="call ended"
                    )
                )
            commands += [cmd.Farewell(m.call_id, PromptName.CONFERENCE_ENDING) for m in remaining]
            commands.append(cmd.EndConference(event.event_id, event.now))
        return [
            *commands,
            cmd.Changed(event.event_id),
            cmd.SetEventState(event.event_id, EventState.ENDED),
            cmd.RecordAudit(cmd.AuditKind.END, event.now, event.event_id, actor="operator"),
        ]
