"""The lobby's vocabulary: what the glue tells it (events) and what it asks back (commands).

Plain data, apart from ``bridge.lobby``'s handlers as aioquic keeps its
events apart from its connection: the glue (``bridge.service``,
``media_plane``, ``lookups``) and the tests name them through the lobby
(``lobby.Invite``, ``lobby.Ring``), which re-exports every one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from callbridge.bridge import commands as cmd
from callbridge.events.schema import EventRecord
from callbridge.media.prompts import PromptName
from callbridge.sip.message import SipRequest

# -- events: what happened -----------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    """A new call's INVITE (``request`` None: no message to read an identity from)."""

    call_id: str
    request: SipRequest | None
    source_ip: str
    dialled: str | None
    caller: str  # the display name or number, as the leg shows it


@dataclass(frozen=True)
class Dialled:
    """A call we placed was answered: invite the callee to press 1 to join ``event_id``.

    ``role`` is what they join as (a speaker or a listener); ``record`` is the
    event as the dial read it, for the admission.
    """

    call_id: str
    event_id: int
    role: cmd.CallerKind
    record: EventRecord
    number: str
    registrant: cmd.Registrant | None = None  # call-me: who they join as (role REGISTRANT)


@dataclass(frozen=True)
class DialPlanRead:
    """The store's dial plan of the leg's number: its events, their code lengths and speakers.

    Fed for every ``ReadDialPlan``; an empty one when the store could not say.
    """

    call_id: str
    event_ids: tuple[int, ...]
    code_lengths: frozenset[int]
    speaker_phones: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Key:
    """A key the caller pressed (RTP events or SIP INFO)."""

    call_id: str
    digit: str


@dataclass(frozen=True)
class PromptDone:
    """The prompt the leg was playing (``Play``) has played to its end."""

    call_id: str


@dataclass(frozen=True)
class Found:
    """What a code opens (``store.events.PasscodeMatch``, or a personal PIN), with what
    admission needs."""

    event_id: int
    role: cmd.CallerKind
    record: EventRecord
    replay_ready: datetime | None = None
    registrant: cmd.Registrant | None = None  # who a personal PIN names (role REGISTRANT)


@dataclass(frozen=True)
class Matched:
    """The store's answer to ``MatchPasscode``: what it opens, or None (a wrong passcode)."""

    call_id: str
    found: Found | None


@dataclass(frozen=True)
class ReplayOver:
    """The replay caller's playback said goodbye (the end, or their ``#``)."""

    call_id: str
    reason: str


@dataclass(frozen=True)
class ReplayMissing:
    """The replay caller's recording could not be found or read."""

    call_id: str


@dataclass(frozen=True)
class Gone:
    """The leg ended (BYE, CANCEL, hung up here, a failed set-up); any call_id may be fed."""

    call_id: str
    reason: str


@dataclass(frozen=True)
class HeardCheck:
    """When each leg's media was last heard: those silent too long are hung up."""

    last_heard: Mapping[str, float]


Event = (
    Invite
    | Dialled
    | DialPlanRead
    | Key
    | PromptDone
    | Matched
    | ReplayOver
    | ReplayMissing
    | Gone
    | HeardCheck
    | cmd.AnswerCaller
    | cmd.Farewell
)

# -- commands: what the glue is to do ------------------------------------------------------


@dataclass(frozen=True)
class Refuse:
    """Answer the INVITE with a final ``status``; no leg was made."""

    call_id: str
    status: int
    reason: str


@dataclass(frozen=True)
class Ring:
    """Take the call: a leg (port, SDP answer), and 180 Ringing."""

    call_id: str


@dataclass(frozen=True)
class ReadDialPlan:
    """Read the dial plan of ``dialled``; feed ``DialPlanRead``."""

    call_id: str
    dialled: str | None


@dataclass(frozen=True)
class Answer:
    """Answer the call (200 OK with the SDP); its media is heard from now on."""

    call_id: str


@dataclass(frozen=True)
class Play:
    """Play ``prompt`` to the leg alone (over whatever it was playing); feed ``PromptDone``."""

    call_id: str
    prompt: PromptName
    barge_in: bool


@dataclass(frozen=True)
class Silence:
    """Stop the leg's prompt (the caller keyed over it)."""

    call_id: str


@dataclass(frozen=True)
class WhisperTo:
    """Play ``prompt`` to the caller over the call they are on."""

    call_id: str
    prompt: PromptName


@dataclass(frozen=True)
class MatchPasscode:
    """Ask the store what ``passcode`` (or personal PIN) opens on ``dialled``; feed ``Matched``."""

    call_id: str
    dialled: str | None
    passcode: str


@dataclass(frozen=True)
class StartReplay:
    """Load the event's recording and play it to the leg (``ReplayMissing`` if there is none)."""

    call_id: str
    event_id: int


@dataclass(frozen=True)
class ReplayKey:
    """A key for the replay caller's playback (pause, skip, ``#``)."""

    call_id: str
    digit: str


@dataclass(frozen=True)
class HangUp:
    """Send BYE and forget the leg (feed ``Gone`` once it is forgotten)."""

    call_id: str
    reason: str


Command = (
    Refuse
    | Ring
    | ReadDialPlan
    | Answer
    | Play
    | Silence
    | WhisperTo
    | MatchPasscode
    | StartReplay
    | ReplayKey
    | HangUp
    | cmd.Admit
    | cmd.KeyPressed
    | cmd.RecordAudit
    | cmd.Changed
)
