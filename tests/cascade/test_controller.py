"""The cascade's controllers in memory: an edge and the origin, wired by hand as the bus would.

The edge's caller joins on the edge, which tells the origin; ``*1`` on the
edge reaches the origin's queue; the moderator's actions on the origin come
back to the edge as directives; the call's end is told once to every node.
An origin that restarts is told every edge caller again, once.
"""

from __future__ import annotations

from datetime import datetime

from callbridge.bridge import views
from callbridge.bridge.commands import (
    AuditKind,
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
    OpenLine,
    RecordAudit,
    StartCall,
    StartConference,
    Whisper,
)
from callbridge.bridge.control import Action, BridgeError, Role
from callbridge.bridge.queue import Floor
from callbridge.cascade.controller import EdgeController, FromOrigin, OriginController, entered_from
from callbridge.cascade.messages import (
    EVERYONE,
    ORIGIN,
    CallState,
    Directive,
    Feeding,
    Joined,
    Keyed,
    Left,
    OriginUp,
    Replicated,
    Tell,
)
from callbridge.events.schema import EventState
from callbridge.media.conference import ConferenceState
from callbridge.media.prompts import PromptName
from tests.bridge.test_controller import EVENT, START

EDGE = "edge-a"


class Cascade:
    """One origin and one edge; what the edge tells the origin is handed over at once."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now
        self.origin = OriginController()
        self.edge = EdgeController(EDGE)
        self.to_edge: list[Tell] = []
        # What the active origin told the standby (its moderator's actions).
        self.to_standby: list[Replicated] = []

    def origin_does(self, commands: list[Command]) -> list[Command]:
        for c in commands:
            if isinstance(c, Tell) and c.to == ORIGIN:
                assert isinstance(c.message, Replicated)
                self.to_standby.append(c.message)
            elif isinstance(c, Tell):
                self.to_edge.append(c)
        return commands

    def told(self, commands: list[Command]) -> list[Command]:
        """The edge's commands; its ``Tell``s to the origin are fed to the origin."""
        for command in commands:
            if not isinstance(command, Tell):
                continue
            assert command.to == ORIGIN
            message = command.message
            if isinstance(message, Joined):
                self.origin_does(self.origin.joined(EDGE, message, self.now))
            elif isinstance(message, Keyed):
                call_id = f"{EDGE}/{message.participant_id}"
                self.origin_does(self.origin.handle(KeyPressed(call_id, message.key, self.now)))
            elif isinstance(message, Left):
                call_id = f"{EDGE}/{message.participant_id}"
                self.origin_does(self.origin.handle(LeftCall(call_id, message.reason, self.now)))
        return commands

    def enter(self, call_id: str, role: str = "listener", hold: bool = False) -> str:
        commands = self.told(
            self.edge.handle(EnterCall(call_id, EVENT, role, hold, "+1555", "+1800", self.now))
        )
        (joined,) = [c for c in commands if isinstance(c, JoinConference)]
        return joined.participant_id

    def deliver(self) -> list[Command]:
        """What the origin told the edge so far, carried out by the edge's controller."""
        commands: list[Command] = []
        for tell in self.to_edge:
            assert tell.to in (EDGE, EVERYONE)
            commands += self.edge.handle(FromOrigin(tell.message, self.now))
        self.to_edge.clear()
        return commands

    def act(self, action: str, participant_id: str | None = None) -> list[Command]:
        moderate = Moderate(
            EVENT,
            Action(action=action, participant_id=participant_id),
            "dana",
            self.now,  # type: ignore[arg-type]
        )
        return self.origin_does(self.origin.handle(moderate))


def test_an_edge_caller_joins_the_origins_call_with_the_edges_id() -> None:
    cascade = Cascade()
    pid = cascade.enter("sip-1")
    assert pid.endswith(f"@{EDGE}")
    call = cascade.origin.call(EVENT)
    assert call is not None
    member = call.members[pid]
    assert member.node == EDGE and member.role is Role.LISTENER
    # The origin writes the call log for every node's callers; the edge writes none.
    assert cascade.origin.member(f"{EDGE}/{pid}") is member


def test_the_edge_logs_nothing_and_tells_the_origin_instead() -> None:
    cascade = Cascade()
    commands = cascade.edge.handle(
        EnterCall("sip-1", EVENT, "listener", False, "+1555", "+1800", cascade.now)
    )
    assert not [c for c in commands if isinstance(c, RecordAudit)]
    (tell,) = [c for c in commands if isinstance(c, Tell)]
    assert isinstance(tell.message, Joined) and tell.message.hold is False
    origin = cascade.origin.handle(entered_from(EDGE, tell.message, cascade.now))
    (join,) = [c for c in origin if isinstance(c, RecordAudit)]
    assert join.kind is AuditKind.JOIN and join.participant_id == tell.message.participant_id


def test_star_one_on_an_edge_queues_on_the_origin_and_whispers_back() -> None:
    cascade = Cascade()
    pid = cascade.enter("sip-1")
    for key in "*1":
        assert cascade.told(cascade.edge.handle(KeyPressed("sip-1", key, cascade.now)))
    call = cascade.origin.call(EVENT)
    assert call is not None and call.queue.order == [pid]
    assert call.queue.floor(pid) is Floor.QUEUED
    (whisper,) = cascade.deliver()
    assert whisper == Whisper(EVENT, pid, PromptName.QUESTION_QUEUED)


def test_opening_and_closing_an_edge_callers_line() -> None:
    cascade = Cascade()
    pid = cascade.enter("sip-1")
    origin = cascade.act("open_line", pid)
    # The origin mixes them; the edge is told to send their audio.
    assert OpenLine(EVENT, pid) in origin
    assert Tell(EDGE, Directive("open_line", pid)) in origin
    on_edge = cascade.deliver()
    assert OpenLine(EVENT, pid) in on_edge
    assert Whisper(EVENT, pid, PromptName.LINE_OPEN) in on_edge
    origin = cascade.act("close_line", pid)
    assert CloseLine(EVENT, pid) in origin
    assert CloseLine(EVENT, pid) in cascade.deliver()


def test_an_edge_caller_is_promoted_and_moved_back_on_their_edge_too() -> None:
    cascade = Cascade()
    pid = cascade.enter("sip-1")
    origin = cascade.act("promote", pid)
    assert OpenLine(EVENT, pid) in origin
    assert Tell(EDGE, Directive("open_line", pid)) in origin
    assert OpenLine(EVENT, pid) in cascade.deliver()
    member = cascade.edge.member("sip-1")
    assert member is not None and member.may_talk  # the edge sends their audio up
    cascade.act("demote", pid)
    assert CloseLine(EVENT, pid) in cascade.deliver()
    assert not member.may_talk


def test_mute_disconnect_and_leave_across_nodes() -> None:
    cascade = Cascade()
    pid = cascade.enter("sip-1", role="speaker")
    cascade.act("mute", pid)
    assert Whisper(EVENT, pid, PromptName.MUTED) in cascade.deliver()
    cascade.act("disconnect", pid)
    (hang_up,) = cascade.deliver()
    assert isinstance(hang_up, Disconnect) and hang_up.call_id == "sip-1"
    left = cascade.told(cascade.edge.handle(LeftCall("sip-1", "disconnected", cascade.now)))
    assert LeaveConference in {type(c) for c in left}
    call = cascade.origin.call(EVENT)
    assert call is not None and call.active() == []


def test_start_and_end_are_told_once_to_every_node() -> None:
    cascade = Cascade()
    pids = [cascade.enter(f"sip-{n}", hold=True) for n in range(3)]
    started = cascade.origin_does(
        cascade.origin.handle(StartCall(EVENT, EventState.SCHEDULED, cascade.now))
    )
    assert Tell(EVERYONE, CallState(EVENT, "live")) in started
    assert cascade.deliver() == [StartConference(EVENT)]
    ended = cascade.origin_does(cascade.origin.handle(EndCall(EVENT, EventState.LIVE, cascade.now)))
    # One message for the whole call, however many callers the edge has.
    assert [c for c in ended if isinstance(c, Tell) and c.to != ORIGIN] == [
        Tell(EVERYONE, CallState(EVENT, "ended"))
    ]
    leaves = [c for c in ended if isinstance(c, RecordAudit) and c.kind is AuditKind.LEAVE]
    assert sorted(r.participant_id or "" for r in leaves) == sorted(pids)
    on_edge = cascade.deliver()
    assert [c.call_id for c in on_edge if isinstance(c, Farewell)] == ["sip-0", "sip-1", "sip-2"]
    assert isinstance(on_edge[-1], EndConference)
    call = cascade.edge.call(EVENT)
    assert call is not None and call.state is ConferenceState.ENDED


def test_a_locked_call_turns_an_edge_listener_away_through_the_edge() -> None:
    cascade = Cascade()
    cascade.enter("sip-1", role="speaker")
    cascade.act("lock")
    cascade.enter("sip-2")
    (farewell,) = cascade.deliver()
    assert isinstance(farewell, Farewell) and farewell.call_id == "sip-2"
    assert farewell.prompt is PromptName.LOCKED


def test_an_edge_refuses_the_moderator() -> None:
    cascade = Cascade()
    cascade.enter("sip-1")
    try:
        cascade.edge.handle(StartCall(EVENT, EventState.SCHEDULED, cascade.now))
    except BridgeError as error:
        assert "edge" in str(error)
    else:
        raise AssertionError("an edge started a call")


FIRST, SECOND = "0123456789abcdef", "fedcba9876543210"


def _joins(commands: list[Command]) -> list[str]:
    return [
        c.participant_id or ""
        for c in commands
        if isinstance(c, RecordAudit) and c.kind is AuditKind.JOIN
    ]


def test_a_restarted_origin_is_told_every_edge_caller_again() -> None:
    cascade = Cascade()
    speaker = cascade.enter("sip-1", role="speaker")
    listener = cascade.enter("sip-2")
    asker = cascade.enter("sip-3")
    cascade.deliver()
    # The origin's first answer: the callers it has already are no news to it.
    cascade.told(cascade.edge.handle(FromOrigin(Feeding(EVENT, "10.0.0.2", 4000, FIRST), START)))
    assert not cascade.to_edge
    call = cascade.origin.call(EVENT)
    assert call is not None and len(call.active()) == 3
    cascade.act("open_line", asker)
    cascade.deliver()
    cascade.told(cascade.edge.handle(LeftCall("sip-2", "BYE", START)))

    # The origin's process dies and starts again, knowing nobody.
    cascade.origin = OriginController()
    told = cascade.edge.handle(FromOrigin(OriginUp(SECOND), START))
    again = [c.message for c in told if isinstance(c, Tell) and isinstance(c.message, Joined)]
    assert [(j.participant_id, j.role, j.again) for j in again] == [
        (speaker, "speaker", True), (asker, "speaker", True),
    ]  # fmt: skip
    recovered: list[Command] = []
    for message in again:
        recovered += cascade.origin.joined(EDGE, message, START)
    # Back on the live call (the speaker in the mix, the opened line open), not logged twice.
    assert StartConference(EVENT) in recovered
    assert {c.participant_id for c in recovered if isinstance(c, JoinConference)} == {
        speaker, asker,
    }  # fmt: skip
    assert not _joins(recovered)
    call = cascade.origin.call(EVENT)
    assert call is not None and call.state is ConferenceState.LIVE
    assert {m.id: m.role for m in call.active()} == {speaker: Role.SPEAKER, asker: Role.SPEAKER}
    assert listener not in call.members
    # The same incarnation again (each Feeding names it): nothing more.
    assert not cascade.edge.handle(FromOrigin(Feeding(EVENT, "h", 1, SECOND), START))
    # Told twice all the same (a message crossing a restart): no news.
    assert cascade.origin.joined(EDGE, again[0], START) == []


def test_a_caller_who_joined_while_no_origin_answered_is_logged_as_a_new_join() -> None:
    cascade = Cascade()
    before = cascade.enter("sip-1")
    cascade.edge.handle(FromOrigin(Feeding(EVENT, "10.0.0.2", 4000, FIRST), START))
    cascade.edge.origin_silent()
    # The origin is down: this Joined reaches nobody.
    cascade.edge.handle(EnterCall("sip-2", EVENT, "listener", False, "+1556", "+1800", START))
    cascade.origin = OriginController()
    told = cascade.edge.handle(FromOrigin(Feeding(EVENT, "10.0.0.2", 4001, SECOND), START))
    recovered: list[Command] = []
    for command in told:
        assert isinstance(command, Tell) and isinstance(command.message, Joined)
        recovered += cascade.origin.joined(EDGE, command.message, START)
    (new,) = _joins(recovered)
    assert new != before and new.endswith(f"@{EDGE}")
    call = cascade.origin.call(EVENT)
    assert call is not None and len(call.active()) == 2


def test_callers_lost_with_their_edge_are_listed_apart_from_those_who_hung_up() -> None:
    cascade = Cascade()
    hung_up, lost = cascade.enter("sip-1"), cascade.enter("sip-2")
    cascade.told(cascade.edge.handle(LeftCall("sip-1", "BYE", cascade.now)))
    # What the origin's node does when the edge has gone silent on the bus.
    reason = f"lost with node {EDGE}"
    left = cascade.origin.handle(LeftCall(f"{EDGE}/{lost}", reason, cascade.now, lost=True))
    assert any(isinstance(c, RecordAudit) and c.detail.get("reason") == reason for c in left)
    call = cascade.origin.call(EVENT)
    assert call is not None and call.active() == []
    assert [(view.participant_id, view.node) for view in views.lost(call)] == [(lost, EDGE)]
    assert hung_up not in {view.participant_id for view in views.lost(call)}


def test_a_standby_fed_what_the_active_origin_hears_and_does_has_the_same_call() -> None:
    cascade = Cascade()
    standby = OriginController()
    speaker = cascade.enter("sip-1", role="speaker")
    asker = cascade.enter("sip-2")
    other = cascade.enter("sip-3")
    # What the edge told ORIGIN reached both origins: the standby hears the Joined too.
    for call_id in ("sip-1", "sip-2", "sip-3"):
        member = cascade.edge.member(call_id)
        assert member is not None
        joined = Joined(EVENT, member.id, member.role.value, "+1555", "+1800", False, 0.0)
        standby.joined(EDGE, joined, cascade.now)
    for key in ("*", "1"):
        event = KeyPressed(f"{EDGE}/{other}", key, cascade.now)
        cascade.origin_does(cascade.origin.handle(event))
        standby.handle(event)
    cascade.act("open_line", asker)
    cascade.act("lock")
    cascade.origin_does(cascade.origin.handle(Moderate(
        EVENT, Action(action="name", participant_id=speaker, name="Mark Chen, CFO"), "dana",
        cascade.now,
    )))  # fmt: skip
    cascade.act("mute", speaker)
    assert [r.what for r in cascade.to_standby] == ["moderate"] * 4
    # The standby does each as the active origin did; what it would tell or write it keeps.
    for replicated in cascade.to_standby:
        standby.replicated(replicated)
    active, hot = cascade.origin.call(EVENT), standby.call(EVENT)
    assert active is not None and hot is not None
    assert hot.state is ConferenceState.LIVE and hot.locked == active.locked is True
    assert {m.id: (m.role, m.muted, m.name) for m in hot.active()} == {
        m.id: (m.role, m.muted, m.name) for m in active.active()
    }
    assert hot.queue.order == active.queue.order and other in active.queue.order
    # The end too.
    cascade.origin_does(cascade.origin.handle(EndCall(EVENT, EventState.LIVE, cascade.now)))
    standby.replicated(cascade.to_standby[-1])
    assert hot.state is ConferenceState.ENDED


def test_an_edge_with_two_origins_tells_each_new_incarnation_once() -> None:
    cascade = Cascade()
    cascade.enter("sip-1")
    cascade.deliver()
    first = cascade.edge.handle(FromOrigin(Feeding(EVENT, "10.0.0.2", 4000, FIRST), START, "o1"))
    second = cascade.edge.handle(FromOrigin(Feeding(EVENT, "10.0.0.3", 4000, SECOND), START, "o2"))
    assert len(first) == len(second) == 1  # each origin is told the caller once
    # Their Feedings take turns every second: no news to either.
    assert not cascade.edge.handle(FromOrigin(Feeding(EVENT, "10.0.0.2", 4000, FIRST), START, "o1"))
    assert not cascade.edge.handle(
        FromOrigin(Feeding(EVENT, "10.0.0.3", 4000, SECOND), START, "o2")
    )
