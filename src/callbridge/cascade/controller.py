"""The call controller of a cascade's nodes: the origin decides, edges ask and obey.

The origin's ``OriginController`` holds every node's callers: an edge's
caller is a ``Member`` with ``node`` set (fed as an ``EnterCall`` naming the
node and the id the edge gave them). Its decisions are the standalone
controller's, with every command about an edge's caller turned into what
the origin does about them (the mix, the console, the call log) and a
``Tell`` for what the edge must do (a prompt, the line, hanging up).
Starting and ending the call are told to every node at once.

An edge's ``EdgeController`` admits its callers by the passcode and the
window as any node does, puts them on its own relayed conference, and tells
the origin who joined, who left and which keys they pressed: the keypad,
the question queue and the moderator are the origin's. What the origin tells
it comes back as ``FromOrigin`` and becomes commands on its own callers.

An origin that restarts (its process killed, then started again by the
supervisor or by hand) has forgotten every edge's callers. It draws a new
incarnation when it starts and names it in ``OriginUp`` and in each
``Feeding``; an edge that hears a new one tells it each caller again
(``Joined`` with ``again``), and the origin takes a caller it already has
as no news, so telling twice is harmless. A caller first told while the
edge heard no origin at all is told as a new join (the call log's row was
never written).

A hot standby origin (``cascade.lease``) hears what the active one hears
(every message to ``ORIGIN``) and decides the same; what the moderator does
on the active origin comes to it as ``Replicated`` (the active controller
adds a ``Tell`` of each moderator's action, start and end), and
``replicated`` turns it back into the event. The node keeps what a standby
decides to itself (``cascade.node``). An edge hears two origins: it keeps
the incarnation of each (``FromOrigin.sender``), and tells one that is new
its callers again.

Pure, as ``bridge.controller`` is: events and ``now`` in, commands out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

import callbridge.bridge.commands as cmd
from callbridge.bridge.control import Action, BridgeError, ParticipantState, Role
from callbridge.bridge.controller import CallController, Member
from callbridge.cascade.messages import (
    EVERYONE,
    ORIGIN,
    CallState,
    Directive,
    Feeding,
    Joined,
    Keyed,
    Left,
    Message,
    OriginUp,
    Replicated,
    Tell,
)
from callbridge.events.schema import EventState
from callbridge.media.conference import ConferenceState
from callbridge.media.prompts import PromptName


def remote_call_id(node: str, participant_id: str) -> str:
    """The key the origin knows an edge's caller by, where a local caller has a Call-ID."""
    return f"{node}/{participant_id}"


class OriginController(CallController):
    """Every node's calls, decided on the origin."""

    def __init__(self) -> None:
        super().__init__()
        # An edge's caller by the key ``remote_call_id`` gives them: (node, participant id).
        # Kept from their EnterCall until they leave, refused or not.
        self.remote: dict[str, tuple[str, str]] = {}

    def handle(self, event: cmd.Event) -> list[cmd.Command]:
        if isinstance(event, cmd.EnterCall) and event.node is not None:
            self.remote[event.call_id] = (event.node, event.participant_id or event.call_id)
        commands = self._route(super().handle(event))
        if isinstance(event, cmd.LeftCall):
            self.remote.pop(event.call_id, None)
        told = replicate(event)
        return commands if told is None else [*commands, Tell(ORIGIN, told)]

    def replicated(self, message: Replicated) -> list[cmd.Command]:
        """The active origin's moderator did this: do it here too (on the standby).

        Raises ``BridgeError`` as the active origin's controller did not (its
        state and ours differ), ``ValueError`` for an action that does not parse.
        """
        return self.handle(replayed(message))

    def joined(self, node: str, message: Joined, now: datetime) -> list[cmd.Command]:
        """An edge's ``Joined``: the caller enters the call, unless they are on it already.

        Told ``again`` (to this origin after a restart), the caller's join is
        in the call log already: no second row.
        """
        if self.member(remote_call_id(node, message.participant_id)) is not None:
            return []
        commands = self.handle(entered_from(node, message, now))
        if message.again:
            commands = [
                c
                for c in commands
                if not (isinstance(c, cmd.RecordAudit) and c.kind is cmd.AuditKind.JOIN)
            ]
        return commands

    def _node_of(self, command: cmd.Command) -> tuple[str, str] | None:
        """The edge that ``command``'s caller is on, with their id; None for a caller here."""
        if isinstance(command, cmd.Farewell | cmd.Disconnect):
            return self.remote.get(command.call_id)
        if isinstance(command, cmd.Whisper | cmd.OpenLine | cmd.CloseLine):
            call = self.calls.get(command.event_id)
            member = call.members.get(command.participant_id) if call is not None else None
            if member is not None and member.node is not None:
                return member.node, member.id
        return None

    def _route(self, commands: list[cmd.Command]) -> list[cmd.Command]:
        ending = any(isinstance(c, cmd.EndConference) for c in commands)
        routed: list[cmd.Command] = []
        for command in commands:
            remote = self._node_of(command)
            if isinstance(command, cmd.StartConference):
                routed += [command, Tell(EVERYONE, CallState(command.event_id, "live"))]
            elif isinstance(command, cmd.EndConference):
                routed += [command, Tell(EVERYONE, CallState(command.event_id, "ended"))]
            elif remote is None:
                routed.append(command)
            elif isinstance(command, cmd.Farewell):
                # The call's end is told once to every node, not once per caller.
                if not ending:
                    routed.append(_tell(remote, "farewell", command.prompt, command.reason))
            elif isinstance(command, cmd.Disconnect):
                routed.append(_tell(remote, "disconnect", reason=command.reason))
            elif isinstance(command, cmd.Whisper):
                routed.append(_tell(remote, "whisper", command.prompt))
            else:
                # The line: the origin mixes them (or stops) and the edge sends their audio.
                action = "open_line" if isinstance(command, cmd.OpenLine) else "close_line"
                routed += [command, _tell(remote, action)]
        return routed


def replicate(event: cmd.Event) -> Replicated | None:
    """What the standby is told of ``event``: a moderator's action, a start or an end."""
    if isinstance(event, cmd.Moderate):
        state = event.event_state.value if event.event_state is not None else ""
        return Replicated(
            event.event_id, "moderate", event.actor[:200], event.now.timestamp(),
            event.action.model_dump_json(exclude_none=True), state,
        )  # fmt: skip
    if isinstance(event, cmd.StartCall | cmd.EndCall):
        what = "start" if isinstance(event, cmd.StartCall) else "end"
        return Replicated(
            event.event_id, what, "", event.now.timestamp(), event_state=event.event_state.value
        )
    return None


def replayed(
    message: Replicated,
) -> cmd.Moderate | cmd.StartCall | cmd.EndCall | cmd.KeyPressed:
    """The event ``message`` replicates; ValueError if its action or state does not parse."""
    now = datetime.fromtimestamp(message.at, UTC)
    if message.what == "key":
        return cmd.KeyPressed(message.actor, message.action, now)
    state = EventState(message.event_state) if message.event_state else None
    if message.what == "moderate":
        action = Action.model_validate_json(message.action)
        return cmd.Moderate(message.event_id, action, message.actor, now, state)
    if state is None:
        raise ValueError(f"a replicated {message.what} names no event state")
    if message.what == "start":
        return cmd.StartCall(message.event_id, state, now)
    return cmd.EndCall(message.event_id, state, now)


def _tell(remote: tuple[str, str], action: str, prompt: str = "", reason: str = "") -> Tell:
    node, participant_id = remote
    return Tell(node, Directive(action, participant_id, prompt, reason))


def entered_from(node: str, message: Joined, now: datetime) -> cmd.EnterCall:
    """The origin's ``EnterCall`` for an edge's caller who joined."""
    return cmd.EnterCall(
        remote_call_id(node, message.participant_id),
        message.event_id,
        cmd.CallerKind(message.role),  # a speaker or a listener: the message was checked
        message.hold,
        message.caller_id,
        message.dialled or None,
        now,
        node=node,
        participant_id=message.participant_id,
    )


@dataclass(frozen=True)
class FromOrigin:
    """What the origin told this edge: a ``Directive``, a ``CallState``, a ``Feeding`` or an
    ``OriginUp``."""

    message: Message
    now: datetime
    sender: str = "origin"  # the origin's node id


class EdgeController(CallController):
    """An edge's callers: admitted here, their floor decided on the origin."""

    names_listed_speakers = False  # names are the origin's (``Joined`` carries no number yet)

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id
        self.tag = f"@{node_id}"
        # Each origin's incarnation this edge last heard, by node id; none before
        # the first and once the origins have gone silent (``origin_silent``).
        self.origins: dict[str, str] = {}
        # Each caller's Joined as told, with the incarnation it was told to.
        self._told: dict[str, tuple[Joined, str | None]] = {}

    def handle(self, event: cmd.Event | FromOrigin) -> list[cmd.Command]:
        if isinstance(event, FromOrigin):
            return self._from_origin(event)
        if isinstance(event, cmd.Moderate | cmd.StartCall | cmd.EndCall):
            raise BridgeError(f"{self.node_id} is an edge: the call is run on its origin")
        if isinstance(event, cmd.KeyPressed):
            member = self.member(event.call_id)
            if member is None or member.state is ParticipantState.LEFT:
                return []
            return [Tell(ORIGIN, Keyed(member.id, event.key, event.now.timestamp()))]
        commands = super().handle(event)
        if isinstance(event, cmd.EnterCall | cmd.Admit):
            return [self._told_joined(event, c) for c in commands]
        if isinstance(event, cmd.LeftCall):
            return [self._told_left(event, c) for c in commands]
        return commands

    def _told_joined(self, event: cmd.EnterCall | cmd.Admit, command: cmd.Command) -> cmd.Command:
        """The origin writes the call log: the join is told to it instead."""
        if not (isinstance(command, cmd.RecordAudit) and command.kind is cmd.AuditKind.JOIN):
            return command
        member = self.member(event.call_id)
        assert member is not None, "a JOIN row names the caller who joined"
        joined = Joined(
            event.event_id,
            member.id,
            member.role.value,
            member.caller_id,
            event.dialled or "",
            member.state is ParticipantState.HOLD,
            event.now.timestamp(),
        )
        self._told[member.id] = (joined, self.origin)
        return Tell(ORIGIN, joined)

    @property
    def origin(self) -> str | None:
        """An incarnation this edge has heard from (the last); None when it knows of none."""
        return next(reversed(self.origins.values()), None)

    def _told_left(self, event: cmd.LeftCall, command: cmd.Command) -> cmd.Command:
        if not (isinstance(command, cmd.RecordAudit) and command.kind is cmd.AuditKind.LEAVE):
            return command
        assert command.participant_id is not None
        self._told.pop(command.participant_id, None)
        return Tell(ORIGIN, Left(command.participant_id, event.reason, event.now.timestamp()))

    def origin_silent(self) -> None:
        """Call when the origin has not answered a ``Subscribe`` for ``SUBSCRIPTION_TTL``.

        Callers who join from now on are told to no origin known: when one
        answers, they are told as new joins, not ``again``.
        """
        self.origins.clear()

    def _origin_is(self, sender: str, incarnation: str) -> list[cmd.Command]:
        """An origin answered as ``incarnation``; a new one is told every caller again.

        Told to ``ORIGIN``, every origin hears it: one that knows the caller
        takes it as no news.
        """
        if not incarnation or self.origins.get(sender) == incarnation:
            return []
        self.origins.pop(sender, None)
        self.origins[sender] = incarnation
        commands: list[cmd.Command] = []
        for call in self.calls.values():
            if call.state is ConferenceState.ENDED:
                continue
            for member in call.active():
                told = self._told.get(member.id)
                if told is None:
                    continue
                joined, told_to = told
                # As they stand now: an opened line is a speaker's, a held caller may be let in.
                again = dataclasses.replace(
                    joined,
                    role=member.role.value,
                    hold=member.state is ParticipantState.HOLD,
                    again=told_to is not None,
                )
                self._told[member.id] = (joined, incarnation)
                commands.append(Tell(ORIGIN, again))
        return commands

    def _from_origin(self, event: FromOrigin) -> list[cmd.Command]:
        message = event.message
        if isinstance(message, Feeding | OriginUp):
            return self._origin_is(event.sender, message.incarnation)
        if isinstance(message, CallState):
            return self._call_state(message, event.now)
        if not isinstance(message, Directive):
            return []
        member = self._find(message.participant_id)
        if member is None:
            return []  # they left meanwhile: the origin hears of it from their Left
        prompt = _prompt(message.prompt)
        if message.action == "whisper":
            return [cmd.Whisper(member.event_id, member.id, prompt)] if prompt is not None else []
        if message.action == "farewell":
            return [cmd.Farewell(member.call_id, prompt or PromptName.ENDED, message.reason)]
        if message.action == "disconnect":
            return [cmd.Disconnect(member.call_id, message.reason or "disconnected by the origin")]
        if message.action == "open_line" and member.role is Role.LISTENER:
            member.role = Role.SPEAKER
            return [cmd.OpenLine(member.event_id, member.id)]
        if message.action == "close_line" and member.role is Role.SPEAKER:
            member.role = Role.LISTENER
            return [cmd.CloseLine(member.event_id, member.id)]
        return []

    def _find(self, participant_id: str) -> Member | None:
        for call in self.calls.values():
            member = call.members.get(participant_id)
            if member is not None and member.state is not ParticipantState.LEFT:
                return member
        return None

    def _call_state(self, message: CallState, now: datetime) -> list[cmd.Command]:
        call = self.calls.get(message.event_id)
        if call is None:
            return []
        if message.state == "live" and call.state is ConferenceState.WAITING:
            call.move(ConferenceState.LIVE)
            return [cmd.StartConference(call.event_id)]
        if message.state == "ended" and call.state is not ConferenceState.ENDED:
            remaining = call.active()
            call.move(ConferenceState.ENDED)
            for member in remaining:
                call.leave(member, now)
            return [
                *(cmd.Farewell(m.call_id, PromptName.CONFERENCE_ENDING) for m in remaining),
                cmd.EndConference(call.event_id, now),
            ]
        return []


def _prompt(name: str) -> PromptName | None:
    try:
        return PromptName(name)
    except ValueError:
        return None
