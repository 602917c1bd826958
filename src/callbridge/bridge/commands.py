"""What the call controller (``bridge.controller``) takes and what it returns.

Events say what happened to a caller or a call; commands say what the node
is to do about it, carried out in order by ``bridge.service.Bridge`` (and,
later, by the edge and origin nodes). Callers are named by their SIP
Call-ID, participants by the id the controller gave them, events by id.
Every event carries ``now``, an aware ``datetime`` (the wall clock).

Plain data only: no sockets, no clock, no store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from callbridge.bridge.control import Action as ModeratorAction
from callbridge.bridge.control import Role
from callbridge.events.names import registrant_label
from callbridge.events.schema import EventRecord, EventState
from callbridge.ivr.machine import Outcome
from callbridge.media.prompts import PromptName


class CallerKind(enum.StrEnum):
    """Who a caller is, by what their code opened (the store's ``PasscodeMatch.role``).

    The next kinds (a dial-out, a browser speaker) are added here, and
    decided where each kind is used.
    """

    SPEAKER = "speaker"
    LISTENER = "listener"
    REPLAY = "replay"
    # A leg we placed (``Bridge.dial``): invited to join, not yet on the call.
    DIALLED = "dialled"
    # A webcast registrant on their personal PIN (``store.pins``): a listener
    # known by name, firm and email, on the call once at a time.
    REGISTRANT = "registrant"


@dataclass(frozen=True)
class Registrant:
    """Who a personal PIN names: the webcast registrant (``store.pins.PinMatch``)."""

    listener_id: int
    name: str
    firm: str | None = None
    email: str | None = None

    @property
    def label(self) -> str:
        """How the console, the queue and the captions call them: "Jane Smith, Acme Capital"."""
        return registrant_label(self.name, self.firm)


# -- events: what happened --------------------------------------------------------------


@dataclass(frozen=True)
class PasscodeMatched:
    """The store found what a caller's passcode opens; may they in, and how?

    ``replay_ready`` is when the event's recording was ready (replay codes
    only; None while there is none). Answered with one ``AnswerCaller``.
    """

    call_id: str
    event_id: int
    role: CallerKind
    record: EventRecord
    now: datetime
    replay_ready: datetime | None = None
    registrant: Registrant | None = None  # a personal PIN's (role REGISTRANT)


@dataclass(frozen=True)
class Admit:
    """A caller's passcode matched: admit them and, if they may in, put them on the call.

    One question for one admission (``PasscodeMatched`` then ``EnterCall`` in
    one): answered with the ``EnterCall``'s commands, if they join a call,
    and one ``AnswerCaller`` last, for the caller's IVR.
    """

    call_id: str
    event_id: int
    role: CallerKind
    record: EventRecord
    now: datetime
    caller: str
    dialled: str | None
    replay_ready: datetime | None = None
    number: str | None = None  # as ``EnterCall.number``
    registrant: Registrant | None = None  # a personal PIN's (role REGISTRANT)


@dataclass(frozen=True)
class EnterCall:
    """The IVR let a caller in (its ``Join``): put them on the event's call."""

    call_id: str
    event_id: int
    role: CallerKind  # a speaker or a listener
    hold: bool
    caller: str
    dialled: str | None
    now: datetime
    # A caller of another node (an edge of the cascade): the node, and the id it gave them.
    node: str | None = None
    participant_id: str | None = None
    # The caller's number as a trusted trunk asserts it (P-Asserted-Identity,
    # else the From URI's user part); None when nobody vouches for it. A
    # speaker whose number is on the event's speaker list is named by it.
    number: str | None = None
    # Who a personal PIN names (role REGISTRANT): named by it, on the call once at a time.
    registrant: Registrant | None = None


@dataclass(frozen=True)
class LeftCall:
    """A caller's leg ended (BYE, timeout, hangup); any call_id may be fed, known or not.

    ``lost``: the leg went with the cascade node it was on (the node died or
    was cut off); the console lists such callers apart: they may redial.
    """

    call_id: str
    reason: str
    now: datetime
    lost: bool = False


@dataclass(frozen=True)
class KeyPressed:
    """A key (DTMF) from a caller who is on a call."""

    call_id: str
    key: str
    now: datetime


@dataclass(frozen=True)
class Moderate:
    """A moderator's action from the console.

    ``event_state`` is the event's state in the store, needed only when the
    controller holds no open call for it (``wants_record``).
    """

    event_id: int
    action: ModeratorAction
    actor: str
    now: datetime
    event_state: EventState | None = None


@dataclass(frozen=True)
class StartCall:
    """The operator opens the call; ``event_state`` is the event's state in the store."""

    event_id: int
    event_state: EventState
    now: datetime


@dataclass(frozen=True)
class EndCall:
    """The operator ends the call; ``event_state`` is the event's state in the store."""

    event_id: int
    event_state: EventState
    now: datetime


@dataclass(frozen=True)
class QuestionWritten:
    """A registered web listener's question (stored already, as ``question_id``)."""

    event_id: int
    question_id: str
    asker: str  # "Name, Firm"
    text: str
    now: datetime


Event = (
    PasscodeMatched
    | Admit
    | EnterCall
    | LeftCall
    | KeyPressed
    | Moderate
    | StartCall
    | EndCall
    | QuestionWritten
)

# -- commands: what the adapter is to do ---------------------------------------------------


@dataclass(frozen=True)
class AnswerCaller:
    """Tell the caller's IVR what their passcode opened (its ``LookupResult``)."""

    call_id: str
    outcome: Outcome
    event_id: int | None = None
    role: CallerKind | None = None
    hold: bool = False


@dataclass(frozen=True)
class OpenConference:
    """Set up the event's media conference (waiting, hold music) and its clock."""

    event_id: int


@dataclass(frozen=True)
class StartConference:
    """Connect everyone held; start recording and the webcast."""

    event_id: int


@dataclass(frozen=True)
class EndConference:
    """Stop the event's conference, its clock, recording and webcast."""

    event_id: int
    at: datetime


@dataclass(frozen=True)
class JoinConference:
    """Put the caller's leg into the event's conference as ``participant_id``, in ``role``."""

    call_id: str
    event_id: int
    participant_id: str
    role: Role
    at: datetime


@dataclass(frozen=True)
class LeaveConference:
    event_id: int
    participant_id: str
    at: datetime


@dataclass(frozen=True)
class SetMuted:
    event_id: int
    participant_id: str
    muted: bool


@dataclass(frozen=True)
class NameParticipant:
    """The moderator named the participant: the console, manifest and transcript use the name."""

    event_id: int
    participant_id: str
    name: str


@dataclass(frozen=True)
class SetQuestionState:
    """Store where a written question stands (``bridge.queue.Asked``'s value)."""

    event_id: int
    question_id: str
    state: str
    at: datetime


@dataclass(frozen=True)
class OpenLine:
    """The listener talks in the mix (as a speaker, unmuted) until ``CloseLine``."""

    event_id: int
    participant_id: str


@dataclass(frozen=True)
class CloseLine:
    event_id: int
    participant_id: str


@dataclass(frozen=True)
class Whisper:
    """Play ``prompt`` to one participant, over what the call sends them."""

    event_id: int
    participant_id: str
    prompt: PromptName


@dataclass(frozen=True)
class Farewell:
    """Take the caller off the call (if on it), say ``prompt``, then hang up."""

    call_id: str
    prompt: PromptName
    reason: str = ""  # for the log, when the caller was turned away


@dataclass(frozen=True)
class Disconnect:
    """Hang the caller up now."""

    call_id: str
    reason: str


@dataclass(frozen=True)
class SetEventState:
    """Write the event's state to the store."""

    event_id: int
    state: EventState


class AuditKind(enum.StrEnum):
    """The call log rows the controller writes (the same values as ``store.calllog.LogKind``)."""

    JOIN = "join"
    LEAVE = "leave"
    ROLE = "role"  # the moderator promoted a listener or moved a speaker back
    MUTE = "mute"
    UNMUTE = "unmute"
    QUEUE = "queue"
    WITHDRAW = "withdraw"
    LINE_OPEN = "line_open"
    LINE_CLOSE = "line_close"
    QUEUE_MOVE = "queue_move"
    START = "start"
    END = "end"
    LOCK = "lock"
    UNLOCK = "unlock"
    NAME = "name"
    QUESTION_WRITTEN = "question_written"
    QUESTION_READ = "question_read"
    QUESTION_ANSWERED = "question_answered"
    QUESTION_DISMISSED = "question_dismissed"
    # The lobby's (``bridge.lobby``): a guesser's calls and their standing.
    PASSCODE_FAILED = "passcode_failed"
    BLOCKED = "blocked"
    GUESSER_SLOWED = "guesser_slowed"
    GUESSER_REFUSED = "guesser_refused"
    # Calls placed (``bridge.dialout``).
    DIAL = "dial"
    DIAL_FAILED = "dial_failed"
    CALL_ME_REFUSED = "call_me_refused"  # a registrant's call-me request (``bridge.callme``)
    CALL_ME_SWITCHED = "call_me_switched"  # the operator turned call-me on or off


@dataclass(frozen=True)
class RecordAudit:
    """Append one row to the call log (``store.calllog.LogEntry``'s fields)."""

    kind: AuditKind
    at: datetime
    event_id: int | None  # None: a row about a caller who reached no event
    participant_id: str | None = None
    caller_id: str | None = None
    role: str | None = None
    actor: str = "system"
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Changed:
    """The console's view of the event changed: bump its version."""

    event_id: int


class NodeCommand:
    """A command only some nodes have, carried out by the node's plug (``service.Plug``).

    A cascade's ``Tell`` (``cascade.messages``) is one: the bridge knows of
    no bus, and ``bridge/`` imports nothing from ``cascade/``.
    """


Command = (
    AnswerCaller
    | OpenConference
    | StartConference
    | EndConference
    | JoinConference
    | LeaveConference
    | SetMuted
    | NameParticipant
    | SetQuestionState
    | OpenLine
    | CloseLine
    | Whisper
    | Farewell
    | Disconnect
    | SetEventState
    | RecordAudit
    | Changed
    | NodeCommand
)
