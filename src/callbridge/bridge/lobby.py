"""Each leg's life outside a call, sans-IO: events and ``now`` in, commands out.

A leg rings, is answered ``answer_delay`` later, keys a passcode through its
IVR (``ivr.machine``), is let into a call or a replay, says goodbye and is
hung up, or falls silent and is hung up. All of that is decided here, as
the call controller (``bridge.controller``) decides what happens on a call:

- the leg's *stage* (``Stage``, a table that raises on anything unlisted),
  apart from the *kind* of caller it turned out to be (``commands.CallerKind``);
- ring → answer, as a timer (``get_timer``/``handle_timer``);
- the IVR session: its prompts, its timers, its lookups;
- the guessing guard (``ivr.guard`` counts, per caller and against each
  number's and trunk's budget; here: refuse at the INVITE, unless the
  caller is a listed speaker's phone (``Vouch``), hold an answer for its
  wait with a timer, refuse a call in progress, the alert rows for the
  audit trail and the console's ``alerts``);
- the identity a caller's failures are counted under (``sip.identity``);
- the replay caller's keys and their call log rows;
- farewell → hang up, and the media timeout.

It holds no sockets, plays no audio and reads no store: ``bridge.service``
feeds it what happened (``handle``) and carries out what it returns: the
commands of this module, and two of the controller's events (``Admit``,
``KeyPressed``), which the glue hands to the controller. A passcode is asked
about once: the store's answer (``Matched``) becomes one ``Admit``, whose
``AnswerCaller`` comes back here.

Time: ``now`` (seconds, the loop's monotonic clock) for timers and the
guard, ``wall`` (an aware ``datetime``) for the rows it writes.

Its vocabulary (the events and commands, plain data) is in
``bridge.lobby_events`` and re-exported here (``lobby.Invite``,
``lobby.Ring``). Still over the house's ~500 lines by the guard's two layers
(the caller's standing; the number's and trunk's budgets and the listed
phone), which decide together at each step of one leg.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callbridge.bridge import commands as cmd
from callbridge.bridge.lobby_events import (
    Answer as Answer,
)
from callbridge.bridge.lobby_events import (
    Command as Command,
)
from callbridge.bridge.lobby_events import (
    Dialled as Dialled,
)
from callbridge.bridge.lobby_events import (
    DialPlanRead as DialPlanRead,
)
from callbridge.bridge.lobby_events import (
    Event as Event,
)
from callbridge.bridge.lobby_events import (
    Found as Found,
)
from callbridge.bridge.lobby_events import (
    Gone as Gone,
)
from callbridge.bridge.lobby_events import (
    HangUp as HangUp,
)
from callbridge.bridge.lobby_events import (
    HeardCheck as HeardCheck,
)
from callbridge.bridge.lobby_events import (
    Invite as Invite,
)
from callbridge.bridge.lobby_events import (
    Key as Key,
)
from callbridge.bridge.lobby_events import (
    Matched as Matched,
)
from callbridge.bridge.lobby_events import (
    MatchPasscode as MatchPasscode,
)
from callbridge.bridge.lobby_events import (
    Play as Play,
)
from callbridge.bridge.lobby_events import (
    PromptDone as PromptDone,
)
from callbridge.bridge.lobby_events import (
    ReadDialPlan as ReadDialPlan,
)
from callbridge.bridge.lobby_events import (
    Refuse as Refuse,
)
from callbridge.bridge.lobby_events import (
    ReplayKey as ReplayKey,
)
from callbridge.bridge.lobby_events import (
    ReplayMissing as ReplayMissing,
)
from callbridge.bridge.lobby_events import (
    ReplayOver as ReplayOver,
)
from callbridge.bridge.lobby_events import (
    Ring as Ring,
)
from callbridge.bridge.lobby_events import (
    Silence as Silence,
)
from callbridge.bridge.lobby_events import (
    StartReplay as StartReplay,
)
from callbridge.bridge.lobby_events import (
    WhisperTo as WhisperTo,
)
from callbridge.events.phones import normalise_dialled
from callbridge.events.schema import EventRecord
from callbridge.ivr.guard import (
    Admission,
    Alert,
    AlertBoard,
    GuardRules,
    PasscodeGuard,
    Standing,
    Vouch,
)
from callbridge.ivr.machine import (
    Answered,
    CodeLengths,
    Digit,
    Hangup,
    Input,
    IvrRules,
    IvrSession,
    IvrTransitionError,
    Join,
    LookupPasscode,
    LookupResult,
    Outcome,
    PlayPrompt,
    PromptFinished,
    StopPrompt,
    TimerFired,
)
from callbridge.media.prompts import PromptName
from callbridge.sip.identity import CallerIdentity, IdentitySource, caller_identity
from callbridge.throttle import Throttle

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Identities a trusted trunk vouches for: their user part is the caller's number.
_VOUCHED = frozenset({IdentitySource.ASSERTED, IdentitySource.FROM_URI})


def _number(identity: CallerIdentity) -> str | None:
    """The caller's number as a trusted trunk asserts it; None when nobody vouches for it."""
    if identity.source in _VOUCHED:
        return identity.key.removeprefix("user:")
    return None


# The codes a guesser is after: they wait for the guessing budgets, right or wrong.
_SECRET = frozenset({cmd.CallerKind.SPEAKER, cmd.CallerKind.REGISTRANT})

# What a callee we dialled hears when they pressed 1 and could not join.
_DIAL_FAREWELLS = {
    Outcome.NOT_STARTED: PromptName.NOT_STARTED,
    Outcome.ENDED: PromptName.ENDED,
    Outcome.LOCKED: PromptName.LOCKED,
    Outcome.BLOCKED: PromptName.BLOCKED,
    Outcome.PIN_IN_USE: PromptName.PIN_IN_USE,  # call-me: the registrant is on the call already
}

# A number's listed speakers' phones, as a dial plan said them, serve an INVITE this long.
PLAN_TTL = 2.0


class Stage(enum.Enum):
    """Where a leg is in its life."""

    RINGING = "ringing"  # the INVITE was taken; carriers play ringback
    INVITED = "invited"  # a callee we dialled: "press 1 to join"
    IVR = "ivr"  # answered: keying a passcode
    CONFERENCE = "conference"  # on a call (the controller's from here on)
    REPLAY = "replay"  # listening to a recorded call, by itself
    FAREWELL = "farewell"  # a last prompt, then BYE
    ENDED = "ended"


# stage → the stages it may move to.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.RINGING: frozenset({Stage.IVR, Stage.ENDED}),
    Stage.INVITED: frozenset({Stage.CONFERENCE, Stage.FAREWELL, Stage.ENDED}),
    Stage.IVR: frozenset({Stage.CONFERENCE, Stage.REPLAY, Stage.FAREWELL, Stage.ENDED}),
    Stage.CONFERENCE: frozenset({Stage.FAREWELL, Stage.ENDED}),
    Stage.REPLAY: frozenset({Stage.FAREWELL, Stage.ENDED}),
    Stage.FAREWELL: frozenset({Stage.ENDED}),
    Stage.ENDED: frozenset(),
}


class StageError(Exception):
    """A move the stage table does not list (a bug, not a caller's doing)."""


def move(leg: LobbyLeg, target: Stage) -> None:
    """Move ``leg`` to ``target``, as the table allows; raises ``StageError`` otherwise."""
    if target not in TRANSITIONS[leg.stage]:
        raise StageError(f"leg {leg.call_id}: {leg.stage.value} cannot become {target.value}")
    leg.stage = target


@dataclass(frozen=True)
class LobbyRules:
    """The lobby's settings (``bridge.service.BridgeConfig`` passes its own)."""

    answer_delay: float = 0.25
    media_timeout: float = 30.0
    ivr: IvrRules = field(default_factory=IvrRules)
    guard: GuardRules = field(default_factory=GuardRules)
    trunk_networks: tuple[Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    # A refused guesser who keeps dialling is written down this often, not per INVITE.
    refusal_note_interval: float = 60.0
    # A callee we dialled hears "press 1 to join" this many times, then goodbye.
    invitations: int = 3


@dataclass
class LobbyLeg:
    """One leg as the lobby knows it."""

    call_id: str
    identity: CallerIdentity
    source_ip: str
    dialled: str | None
    caller: str
    ivr: IvrSession
    answer_at: float
    stage: Stage = Stage.RINGING
    kind: cmd.CallerKind | None = None
    event_id: int | None = None
    # The number dialled's plan, once read: a guesser's alert goes to its events'
    # consoles; its listed speakers' phones are never refused.
    event_ids: tuple[int, ...] = ()
    speaker_phones: frozenset[str] | None = None
    # A refused identity that may be a listed speaker's phone: not rung,
    # answered or refused until the number's plan says which.
    on_trial: bool = False
    # A code keyed before the plan was read: looked up once it is.
    code: str | None = None
    last_digit_at: float | None = None
    # A code's answer held for the guard's wait: when, what the store said, the admission.
    slowed: tuple[float, Found | None, Admission] | None = None
    replay_id: str | None = None  # the replay caller's id in the call log
    farewell_reason: str = ""
    # A callee we dialled: what they join as, the event as the dial read it, and
    # how many times they have heard the invitation.
    invited: tuple[cmd.CallerKind, EventRecord, cmd.Registrant | None] | None = None
    invitations: int = 0


class Lobby:
    """Every leg of one node outside its calls, and the decisions about them."""

    def __init__(self, rules: LobbyRules = LobbyRules()) -> None:
        self.rules = rules
        # Wrong passcodes are counted per caller identity (sip/identity.py),
        # never per trunk address; slowed and refused callers are posted for
        # the console of every event on the number they dialled.
        self.guard = PasscodeGuard(rules.guard)
        self.alerts = AlertBoard()
        self.legs: dict[str, LobbyLeg] = {}
        self._refusals_noted = Throttle(rules.refusal_note_interval)
        # Legs with a timer of their own (ringing, keying, slowed): looked at on each tick.
        self._timed: set[str] = set()
        self._replays = 0
        # Each number's listed speakers' phones as last read, and when (``PLAN_TTL``).
        self._phones: dict[str | None, tuple[float, frozenset[str]]] = {}
        self._handlers: dict[type, Callable[[Any, float, datetime], list[Command]]] = {
            Invite: self._invite,
            Dialled: self._dialled,
            DialPlanRead: self._dial_plan,
            Key: self._key,
            PromptDone: self._prompt_done,
            Matched: self._matched,
            ReplayOver: lambda e, now, wall: self._hang_up(e.call_id, e.reason),
            ReplayMissing: self._replay_missing,
            Gone: self._gone,
            HeardCheck: self._heard_check,
            cmd.AnswerCaller: self._answered,
            cmd.Farewell: self._farewell_event,
        }

    # -- the public surface ----------------------------------------------------------------

    def handle(self, event: Event, now: float, wall: datetime) -> list[Command]:
        """Feed one event; returns the commands to carry out, in order."""
        return self._handlers[type(event)](event, now, wall)

    def get_timer(self) -> float | None:
        """When ``handle_timer`` has something to do next, or None."""
        deadlines = [d for c in self._timed if (d := self._deadline(self.legs[c])) is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float, wall: datetime) -> list[Command]:
        """Answer the rings that are due, fire IVR timers, answer slowed lookups."""
        commands: list[Command] = []
        for call_id in list(self._timed):
            leg = self.legs.get(call_id)
            if leg is None:
                self._timed.discard(call_id)
                continue
            if leg.stage is Stage.RINGING and now >= leg.answer_at and not leg.on_trial:
                commands += self._answer(leg, now)
            if leg.slowed is not None and now >= leg.slowed[0]:
                _, found, admission = leg.slowed
                leg.slowed = None
                commands += self._waited(leg, found, admission, now, wall)
            timer = leg.ivr.get_timer()
            if leg.stage is Stage.IVR and timer is not None and timer <= now:
                commands += self._ivr(leg, TimerFired(now), now, wall)
            if self._deadline(leg) is None:
                self._timed.discard(call_id)
        return commands

    def stage(self, call_id: str) -> Stage:
        """The leg's stage (ENDED for a leg not known, or no longer)."""
        leg = self.legs.get(call_id)
        return leg.stage if leg is not None else Stage.ENDED

    def leg(self, call_id: str) -> LobbyLeg | None:
        return self.legs.get(call_id)

    # -- handlers ----------------------------------------------------------------------------

    def _identity(self, event: Invite) -> CallerIdentity:
        """Who the trunk says is calling: the key the guard counts under."""
        try:
            address = ipaddress.ip_address(event.source_ip)
            trusted = any(address in net for net in self.rules.trunk_networks)
        except ValueError:
            trusted = False
        if event.request is None:
            return CallerIdentity(f"address:{event.source_ip}", IdentitySource.ADDRESS)
        return caller_identity(event.request, event.source_ip, trusted)

    def _vouch(self, identity: CallerIdentity, phones: frozenset[str] | None) -> Vouch:
        """LISTED_PHONE when the trunk asserts a phone the number's plan lists for a speaker.

        ``phones`` None (the plan not read yet): the benefit of the doubt.
        """
        if identity.source not in _VOUCHED:
            return Vouch.NONE
        if phones is None:
            return Vouch.LISTED_PHONE
        phone = normalise_dialled(identity.key.removeprefix("user:"))
        return Vouch.LISTED_PHONE if phone in phones else Vouch.NONE

    def _trunk_of(self, source_ip: str) -> str:
        """The trunk a call came in on, for its guessing budget: its allowed network."""
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return source_ip
        for network in self.rules.trunk_networks:
            if address in network:
                return str(network)
        return source_ip

    def _refuse(
        self, call_id: str, identity: CallerIdentity, source_ip: str, now: float, wall: datetime
    ) -> list[Command]:
        """403 for a refused guesser's call."""
        refused = Refuse(call_id, 403, "Forbidden (too many wrong passcodes)")
        # Written down once a minute, not once per INVITE: a flood must not
        # become database writes.
        if not self._refusals_noted.allow(identity.key, now):
            return [refused]
        log.warning("call from %s refused: too many wrong passcodes", identity)
        row = cmd.RecordAudit(
            cmd.AuditKind.BLOCKED,
            wall,
            None,
            caller_id=identity.key,
            detail={"source": source_ip, "identity": identity.source.value},
        )
        return [row, refused]

    def _invite(self, event: Invite, now: float, wall: datetime) -> list[Command]:
        identity = self._identity(event)
        on_trial = False
        if self.guard.is_refused(identity.key, now):
            # A listed speaker's phone is never refused: a guesser may have spoofed it.
            cached = self._phones.get(event.dialled)
            phones = cached[1] if cached is not None and now - cached[0] < PLAN_TTL else None
            vouch = self._vouch(identity, phones)
            if self.guard.is_refused(identity.key, now, vouch):
                return self._refuse(event.call_id, identity, event.source_ip, now, wall)
            on_trial = phones is None  # its plan decides, before it is answered
        if event.call_id in self.legs:
            # The endpoint answers a retransmission itself; a second call with
            # this Call-ID must not take the first one's leg.
            log.warning("leg %s was invited already; the second INVITE is ignored", event.call_id)
            return []
        leg = LobbyLeg(
            event.call_id,
            identity,
            event.source_ip,
            event.dialled,
            event.caller,
            IvrSession(self.rules.ivr),
            answer_at=now + self.rules.answer_delay,
            on_trial=on_trial,
        )
        self.legs[event.call_id] = leg
        self._timed.add(event.call_id)
        if on_trial:
            # Nothing is sent until the plan says: a 403 after a 180 would
            # tell the guesser more, and confuse a trunk.
            return [ReadDialPlan(event.call_id, event.dialled)]
        return [Ring(event.call_id), ReadDialPlan(event.call_id, event.dialled)]

    def _dialled(self, event: Dialled, now: float, wall: datetime) -> list[Command]:
        """A callee we placed a call to answered: they hear the invitation, keys barge in."""
        if event.call_id in self.legs:
            return []
        leg = LobbyLeg(
            event.call_id,
            CallerIdentity(f"dialled:{event.number}", IdentitySource.ADDRESS),
            "",
            None,
            event.number,
            IvrSession(self.rules.ivr),
            answer_at=now,
            stage=Stage.INVITED,
            kind=cmd.CallerKind.DIALLED,
            event_id=event.event_id,
        )
        leg.invited = (event.role, event.record, event.registrant)
        leg.invitations = 1
        self.legs[event.call_id] = leg
        return [Play(leg.call_id, PromptName.PRESS_ONE, barge_in=True)]

    def _invited_key(self, leg: LobbyLeg, digit: str, now: float, wall: datetime) -> list[Command]:
        """'1' admits the callee as the dial said; other keys are ignored."""
        if digit != "1" or leg.invited is None or leg.event_id is None:
            return []
        role, record, registrant = leg.invited
        leg.invited = None  # asked once: a second '1' while the controller answers is nothing
        leg.last_digit_at = now
        # A call-me callee joins as their registration, as their personal PIN would.
        admit = cmd.Admit(
            leg.call_id,
            leg.event_id,
            role,
            record,
            wall,
            leg.caller,
            None,
            number=leg.caller,
            registrant=registrant,
        )
        return [Silence(leg.call_id), admit]

    def _answer(self, leg: LobbyLeg, now: float) -> list[Command]:
        move(leg, Stage.IVR)
        return [Answer(leg.call_id), *self._ivr(leg, Answered(now), now, None)]

    def _dial_plan(self, event: DialPlanRead, now: float, wall: datetime) -> list[Command]:
        leg = self.legs.get(event.call_id)
        if len(self._phones) > 10_000:
            self._phones.clear()
        if leg is None:
            return []
        self._phones[leg.dialled] = (now, event.speaker_phones)
        leg.event_ids, leg.speaker_phones = event.event_ids, event.speaker_phones
        commands: list[Command] = []
        if leg.on_trial:
            leg.on_trial = False
            vouch = self._vouch(leg.identity, event.speaker_phones)
            if self.guard.is_refused(leg.identity.key, now, vouch):
                refused = self._refuse(leg.call_id, leg.identity, leg.source_ip, now, wall)
                return [*refused, HangUp(leg.call_id, "refused")]
            leg.answer_at = now + self.rules.answer_delay
            commands.append(Ring(leg.call_id))
        commands += self._ivr(leg, CodeLengths(event.code_lengths, now), now, wall)
        if leg.code is not None:
            code, leg.code = leg.code, None
            commands += self._lookup(leg, code, now)
        return commands

    def _key(self, event: Key, now: float, wall: datetime) -> list[Command]:
        leg = self.legs.get(event.call_id)
        if leg is None:
            return []
        if leg.stage is Stage.IVR:
            leg.last_digit_at = now
            return self._ivr(leg, Digit(event.digit, now), now, wall)
        if leg.stage is Stage.INVITED:
            return self._invited_key(leg, event.digit, now, wall)
        if leg.stage is Stage.REPLAY:
            return [ReplayKey(leg.call_id, event.digit)]
        if leg.stage is Stage.CONFERENCE:
            return [cmd.KeyPressed(leg.call_id, event.digit, wall)]
        return []  # ringing, or saying goodbye: keys do nothing

    def _prompt_done(self, event: PromptDone, now: float, wall: datetime) -> list[Command]:
        leg = self.legs.get(event.call_id)
        if leg is None:
            return []
        if leg.stage is Stage.FAREWELL:
            return self._hang_up(leg.call_id, leg.farewell_reason or "goodbye")
        if leg.stage is Stage.INVITED and leg.invited is not None:
            if leg.invitations >= self.rules.invitations:
                return self._hang_up(leg.call_id, "no answer to the invitation")
            leg.invitations += 1
            return [Play(leg.call_id, PromptName.PRESS_ONE, barge_in=True)]
        if leg.stage is Stage.IVR:
            return self._ivr(leg, PromptFinished(now), now, wall)
        return []

    # -- the IVR and the guard ------------------------------------------------------------------

    def _ivr(self, leg: LobbyLeg, event: Input, now: float, wall: datetime | None) -> list[Command]:
        """Feed the leg's IVR; its actions become commands."""
        try:
            leg.ivr.handle(event)
        except IvrTransitionError as error:
            log.debug("leg %s: %s", leg.call_id, error)
            return []
        commands: list[Command] = []
        while (action := leg.ivr.next_action()) is not None:
            if isinstance(action, PlayPrompt):
                if leg.stage is Stage.CONFERENCE:
                    commands.append(WhisperTo(leg.call_id, action.prompt))
                elif leg.stage is Stage.IVR:
                    commands.append(Play(leg.call_id, action.prompt, action.barge_in))
                # A replay plays its own welcome, in its own frames.
            elif isinstance(action, StopPrompt):
                commands.append(Silence(leg.call_id))
            elif isinstance(action, LookupPasscode):
                commands += self._lookup(leg, action.passcode, now)
            elif isinstance(action, Join):
                commands += self._join(leg, action, wall)
            elif isinstance(action, Hangup):
                commands += self._hang_up(leg.call_id, action.reason)
        if leg.ivr.get_timer() is not None:
            self._timed.add(leg.call_id)
        return commands

    def _lookup(self, leg: LobbyLeg, passcode: str, now: float) -> list[Command]:
        if leg.speaker_phones is None:
            leg.code = passcode  # looked up once the number's plan is read
            return []
        vouch = self._vouch(leg.identity, leg.speaker_phones)
        if self.guard.is_refused(leg.identity.key, now, vouch):
            return self._ivr(leg, LookupResult(Outcome.BLOCKED, now), now, None)
        return [MatchPasscode(leg.call_id, leg.dialled, passcode)]

    def _matched(self, event: Matched, now: float, wall: datetime) -> list[Command]:
        """The store answered: the guard says how long the answer waits, right or wrong."""
        leg = self.legs.get(event.call_id)
        if leg is None or leg.stage is not Stage.IVR:
            return []
        found = event.found
        # A code the release prints (the listener's, the replay's) is no secret:
        # it skips the guessing budgets, so the crowd keeps joining while a
        # guesser has drained them. Any other code (the speakers', a personal
        # PIN), right or wrong, waits alike (the wait says nothing about it)
        # and holds a token of the number's and the trunk's budgets until it
        # is settled.
        secret = found is None or found.role in _SECRET
        admission = self.guard.admit(
            leg.identity.key,
            now,
            number=(leg.dialled or "any") if secret and leg.event_ids else None,
            trunk=self._trunk_of(leg.source_ip) if secret else None,
            vouch=self._vouch(leg.identity, leg.speaker_phones),
        )
        if admission.wait > 0:
            leg.slowed = (now + admission.wait, found, admission)
            self._timed.add(leg.call_id)
            return []
        return self._answer_code(leg, found, admission, now, wall)

    def _waited(
        self,
        leg: LobbyLeg,
        found: Found | None,
        admission: Admission,
        now: float,
        wall: datetime,
    ) -> list[Command]:
        """A held answer's wait is over: refused meanwhile, or answered now."""
        if self.guard.is_refused(leg.identity.key, now, admission.vouch):
            self.guard.release(admission, now)  # never answered: its tokens go back
            return self._ivr(leg, LookupResult(Outcome.BLOCKED, now), now, wall)
        return self._answer_code(leg, found, admission, now, wall)

    def _answer_code(
        self,
        leg: LobbyLeg,
        found: Found | None,
        admission: Admission,
        now: float,
        wall: datetime,
    ) -> list[Command]:
        alerts = self.guard.settle(admission, now, wrong=found is None)
        if found is not None:
            number = _number(leg.identity)
            admit = cmd.Admit(
                leg.call_id,
                found.event_id,
                found.role,
                found.record,
                wall,
                leg.caller,
                leg.dialled,
                found.replay_ready,
                number,
                found.registrant,
            )
            return [admit]
        key = leg.identity.key
        log.info("leg %s (%s): wrong passcode", leg.call_id, key)
        commands: list[Command] = [
            cmd.RecordAudit(
                cmd.AuditKind.PASSCODE_FAILED,
                wall,
                None,
                caller_id=key,
                detail={
                    "source": leg.source_ip,
                    "dialled": leg.dialled or "",
                    "tries": leg.ivr.tries + 1,
                    "display_name": leg.caller,
                },
            )
        ]
        for alert in alerts:
            commands += self._alert(alert, leg, wall)
        refused = self.guard.is_refused(key, now, admission.vouch)
        outcome = Outcome.BLOCKED if refused else Outcome.INVALID
        return [*commands, *self._ivr(leg, LookupResult(outcome, now), now, wall)]

    def _alert(self, alert: Alert, leg: LobbyLeg, wall: datetime) -> list[Command]:
        """An identity was slowed or refused: the audit trail and the consoles hear of it."""
        log.warning(
            "%s %s after %d wrong passcodes",
            alert.identity,
            alert.standing.value,
            alert.failures,
        )
        self.alerts.post(alert, leg.event_ids)
        kind = (
            cmd.AuditKind.GUESSER_REFUSED
            if alert.standing is Standing.REFUSED
            else cmd.AuditKind.GUESSER_SLOWED
        )
        detail: dict[str, object] = {
            "source": leg.source_ip,
            "dialled": leg.dialled or "",
            "failures": alert.failures,
        }
        if alert.until is not None:
            detail["refused_for_s"] = round(alert.until - alert.at)
        if alert.delay:
            detail["delay_s"] = alert.delay
        if alert.is_budget:
            detail["budget"] = alert.identity.split(":", 1)[0]
        if alert.vouch is not Vouch.NONE:
            detail["vouched"] = alert.vouch.value  # slowed, never refused
        events: tuple[int | None, ...] = leg.event_ids or (None,)
        rows: list[Command] = [
            cmd.RecordAudit(kind, wall, event_id, caller_id=alert.identity, detail=detail)
            for event_id in events
        ]
        return [*rows, *(cmd.Changed(event_id) for event_id in leg.event_ids)]

    def _answered(self, event: cmd.AnswerCaller, now: float, wall: datetime) -> list[Command]:
        """The controller's answer to ``Admit``: into the call, a replay, or a goodbye."""
        leg = self.legs.get(event.call_id)
        if leg is not None and leg.stage is Stage.INVITED:
            return self._invited_answer(leg, event, now)
        if leg is None or leg.stage is not Stage.IVR:
            return []
        commands: list[Command] = []
        if event.outcome is Outcome.JOINED:
            if event.role is None:
                raise StageError(f"leg {leg.call_id} joined as nobody")
            commands.append(Silence(leg.call_id))
            leg.kind = cmd.CallerKind(event.role)
            leg.event_id = event.event_id
            if leg.kind is not cmd.CallerKind.REPLAY:
                # The controller has put the caller on the call already.
                move(leg, Stage.CONFERENCE)
        result = LookupResult(
            event.outcome, now, event_id=event.event_id, role=event.role, hold=event.hold
        )
        return commands + self._ivr(leg, result, now, wall)

    def _invited_answer(self, leg: LobbyLeg, event: cmd.AnswerCaller, now: float) -> list[Command]:
        """The controller's answer for a callee who pressed 1: on the call, or a goodbye."""
        if event.outcome is not Outcome.JOINED or event.role is None:
            prompt = _DIAL_FAREWELLS.get(event.outcome, PromptName.ENDED)
            return self._farewell(leg, prompt, "could not join", now)
        move(leg, Stage.CONFERENCE)
        leg.event_id = event.event_id
        # The leg stays DIALLED (we placed it); a call-me registrant listens.
        joining = (
            PromptName.JOINING_SPEAKER
            if event.role == cmd.CallerKind.SPEAKER
            else PromptName.JOINING_LISTENER
        )
        return [WhisperTo(leg.call_id, joining)]

    def _join(self, leg: LobbyLeg, action: Join, wall: datetime | None) -> list[Command]:
        if leg.kind is not cmd.CallerKind.REPLAY or wall is None:
            return []  # a call's caller: the controller joined them with its answer
        move(leg, Stage.REPLAY)
        self._replays += 1
        leg.replay_id = f"r{action.event_id}-{self._replays}"
        row = cmd.RecordAudit(
            cmd.AuditKind.JOIN,
            wall,
            action.event_id,
            leg.replay_id,
            caller_id=leg.caller,
            role=cmd.CallerKind.REPLAY.value,
            detail={
                "call_id": leg.call_id,
                "dialled": leg.dialled or "",
                "number": _number(leg.identity) or "",  # the exports' number
            },
        )
        return [StartReplay(leg.call_id, action.event_id), row]

    # -- endings ----------------------------------------------------------------------------------

    def _replay_missing(self, event: ReplayMissing, now: float, wall: datetime) -> list[Command]:
        leg = self.legs.get(event.call_id)
        if leg is None or leg.stage is not Stage.REPLAY:
            return []
        return self._farewell(leg, PromptName.REPLAY_NOT_YET, "goodbye", now)

    def _farewell_event(self, event: cmd.Farewell, now: float, wall: datetime) -> list[Command]:
        leg = self.legs.get(event.call_id)
        if leg is None:
            return []
        if event.reason:
            log.info("leg %s could not join: %s", leg.call_id, event.reason)
        return self._farewell(leg, event.prompt, "goodbye", now)

    def _farewell(
        self, leg: LobbyLeg, prompt: PromptName, reason: str, now: float
    ) -> list[Command]:
        """Say ``prompt``, then hang up (``PromptDone``)."""
        if leg.stage in (Stage.FAREWELL, Stage.ENDED):
            return []
        move(leg, Stage.FAREWELL)
        leg.farewell_reason = leg.ivr.hangup_reason or reason
        self._forget_wait(leg, now)
        self._timed.discard(leg.call_id)
        return [Play(leg.call_id, prompt, barge_in=False)]

    def _hang_up(self, call_id: str, reason: str) -> list[Command]:
        return [HangUp(call_id, reason)] if call_id in self.legs else []

    def _heard_check(self, event: HeardCheck, now: float, wall: datetime) -> list[Command]:
        timeout = self.rules.media_timeout
        commands: list[Command] = []
        for call_id, heard in event.last_heard.items():
            if now - heard > timeout and call_id in self.legs:
                log.info("leg %s: no RTP for %.0f s; hanging up", call_id, timeout)
                commands.append(HangUp(call_id, "media timeout"))
        return commands

    def _gone(self, event: Gone, now: float, wall: datetime) -> list[Command]:
        leg = self.legs.pop(event.call_id, None)
        self._timed.discard(event.call_id)
        if leg is None:
            return []
        leg.stage = Stage.ENDED
        self._forget_wait(leg, now)
        if leg.replay_id is None or leg.event_id is None:
            return []
        return [
            cmd.RecordAudit(
                cmd.AuditKind.LEAVE,
                wall,
                leg.event_id,
                leg.replay_id,
                caller_id=leg.caller,
                detail={"reason": event.reason},
            )
        ]

    # -- internals ---------------------------------------------------------------------------------

    def _forget_wait(self, leg: LobbyLeg, now: float) -> None:
        """A held answer that will never be given: its budgets' tokens go back."""
        if leg.slowed is not None:
            self.guard.release(leg.slowed[2], now)
            leg.slowed = None

    def _deadline(self, leg: LobbyLeg) -> float | None:
        deadlines = []
        if leg.stage is Stage.RINGING:
            deadlines.append(leg.answer_at)
        if leg.slowed is not None:
            deadlines.append(leg.slowed[0])
        timer = leg.ivr.get_timer()
        if leg.stage is Stage.IVR and timer is not None:
            deadlines.append(timer)
        return min(deadlines, default=None)
