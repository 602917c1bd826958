"""The lobby in memory, on a clock the test sets: a leg's life outside a call.

What only a real ``serve`` and sipp could reach before: ringing then a
CANCEL, a wrong passcode then the right one, a guesser slowed then refused,
a replay caller's keys, a farewell then the hangup, the media timeout. The
lobby talks to a real ``CallController`` in memory, as ``bridge.service``
wires them: the controller's events the lobby returns go to the
controller, and its ``AnswerCaller`` and ``Farewell`` come back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from callbridge.bridge import commands as cmd
from callbridge.bridge import lobby
from callbridge.bridge.controller import CallController
from callbridge.bridge.lobby import (
    TRANSITIONS,
    Lobby,
    LobbyLeg,
    LobbyRules,
    Stage,
    StageError,
    move,
)
from callbridge.events.schema import EventState
from callbridge.ivr.guard import Budget, GuardRules, Standing
from callbridge.ivr.machine import IvrSession
from callbridge.media.prompts import PromptName
from callbridge.sip.identity import CallerIdentity, IdentitySource
from tests.bridge.test_controller import EVENT, RECORD, START
from tests.sip.test_identity import invite

CODE = "1234567"
OTHER_EVENT = 8


class Node:
    """A lobby and a controller on one clock, wired as the bridge wires them."""

    def __init__(self, rules: LobbyRules | None = None, wall: datetime = START) -> None:
        self.lobby = Lobby(rules or LobbyRules())
        self.controller = CallController()
        self.now = 0.0
        self.wall0 = wall

    @property
    def wall(self) -> datetime:
        return self.wall0 + timedelta(seconds=self.now)

    def run(self, commands: list[lobby.Command | cmd.Command]) -> list[object]:
        """Carry out what the controller decides in memory; return everything else, in order."""
        done: list[object] = []
        for command in commands:
            if isinstance(command, cmd.Admit | cmd.KeyPressed):
                done.append(command)
                done += self.run(list(self.controller.handle(command)))
            elif isinstance(command, cmd.AnswerCaller | cmd.Farewell):
                done.append(command)
                done += self.run(list(self.lobby.handle(command, self.now, self.wall)))
            else:
                done.append(command)
        return done

    def feed(self, event: lobby.Event) -> list[object]:
        return self.run(list(self.lobby.handle(event, self.now, self.wall)))

    def at(self, now: float) -> list[object]:
        """Move the clock to ``now`` and let the lobby's timers fire."""
        self.now = now
        return self.run(list(self.lobby.handle_timer(self.now, self.wall)))

    def answered(self, call_id: str = "c", source: str = "192.0.2.7") -> None:
        """A call rung, answered and past its welcome, on a number with 7-digit codes."""
        self.feed(lobby.Invite(call_id, None, source, "+18665550199", "Ann"))
        self.feed(lobby.DialPlanRead(call_id, (EVENT, OTHER_EVENT), frozenset({7})))
        self.at(self.now + LobbyRules().answer_delay)
        self.feed(lobby.PromptDone(call_id))

    def key(self, digits: str, call_id: str = "c") -> list[object]:
        done: list[object] = []
        for digit in digits:
            done += self.feed(lobby.Key(call_id, digit))
        return done


def of(kind: type, done: list[object]) -> list[object]:
    return [c for c in done if isinstance(c, kind)]


def rows(kind: cmd.AuditKind, done: list[object]) -> list[cmd.RecordAudit]:
    return [c for c in done if isinstance(c, cmd.RecordAudit) and c.kind is kind]


def listener() -> lobby.Found:
    return lobby.Found(EVENT, cmd.CallerKind.LISTENER, RECORD)


def test_a_call_rings_then_is_answered_after_the_answer_delay() -> None:
    node = Node()
    done = node.feed(lobby.Invite("c", None, "192.0.2.7", "+18665550199", "Ann"))
    assert done == [lobby.Ring("c"), lobby.ReadDialPlan("c", "+18665550199")]
    assert node.lobby.stage("c") is Stage.RINGING
    assert node.lobby.get_timer() == pytest.approx(0.25)
    assert node.at(0.2) == []
    done = node.at(0.25)
    assert done == [lobby.Answer("c"), lobby.Play("c", PromptName.WELCOME, barge_in=True)]
    assert node.lobby.stage("c") is Stage.IVR


def test_a_second_invite_with_the_same_call_id_leaves_the_first_leg_alone() -> None:
    node = Node()
    node.answered()
    assert node.feed(lobby.Invite("c", None, "192.0.2.9", "+18665550199", "Eve")) == []
    leg = node.lobby.leg("c")
    assert leg is not None and leg.stage is Stage.IVR and leg.caller == "Ann"


def test_a_call_cancelled_while_ringing_is_never_answered() -> None:
    node = Node()
    node.feed(lobby.Invite("c", None, "192.0.2.7", "+18665550199", "Ann"))
    assert node.feed(lobby.Gone("c", "cancelled")) == []
    assert node.at(1.0) == []
    assert node.lobby.get_timer() is None
    assert node.lobby.stage("c") is Stage.ENDED
    # What the store answers for a leg that has gone is dropped.
    assert node.feed(lobby.DialPlanRead("c", (EVENT,), frozenset({7}))) == []


def test_a_wrong_code_then_the_right_one_joins_the_call_once_asked() -> None:
    node = Node()
    node.answered()
    done = node.key(CODE)
    assert done[-1] == lobby.MatchPasscode("c", "+18665550199", CODE)
    done = node.feed(lobby.Matched("c", None))
    (failed,) = of(cmd.RecordAudit, done)
    assert isinstance(failed, cmd.RecordAudit)
    assert failed.kind is cmd.AuditKind.PASSCODE_FAILED and failed.caller_id == "address:192.0.2.7"
    assert failed.detail["tries"] == 1
    assert done[-1] == lobby.Play("c", PromptName.INVALID_RETRY, barge_in=True)
    node.feed(lobby.PromptDone("c"))
    node.now = 5.0
    node.key(CODE)
    done = node.feed(lobby.Matched("c", listener()))
    # One question to the controller: it admits and joins, and answers last.
    assert len(of(cmd.Admit, done)) == 1
    joins = of(cmd.JoinConference, done)
    assert len(joins) == 1 and of(cmd.PasscodeMatched, done) == []
    answer = done.index(of(cmd.AnswerCaller, done)[0])
    assert done.index(joins[0]) < answer
    assert done[answer + 1 :] == [
        lobby.Silence("c"),
        lobby.WhisperTo("c", PromptName.JOINING_LISTENER),
    ]
    assert node.lobby.stage("c") is Stage.CONFERENCE
    leg = node.lobby.leg("c")
    assert leg is not None and leg.kind is cmd.CallerKind.LISTENER and leg.last_digit_at == 5.0
    # On the call, a key is the controller's.
    assert node.feed(lobby.Key("c", "*"))[0] == cmd.KeyPressed("c", "*", node.wall)


def test_a_guesser_is_slowed_then_refused_and_their_next_call_is_refused_at_the_invite() -> None:
    rules = LobbyRules(guard=GuardRules(max_failures=3, slow_after=2, first_delay=2.0))
    node = Node(rules)
    node.answered("a")
    node.key(CODE, "a")
    node.feed(lobby.Matched("a", None))
    node.feed(lobby.PromptDone("a"))
    node.key(CODE, "a")
    done = node.feed(lobby.Matched("a", None))
    slowed = rows(cmd.AuditKind.GUESSER_SLOWED, done)
    # One row for each event on the number, and each console hears of it.
    assert [r.event_id for r in slowed] == [EVENT, OTHER_EVENT]
    assert of(cmd.Changed, done) == [cmd.Changed(EVENT), cmd.Changed(OTHER_EVENT)]
    (alert,) = node.lobby.alerts.for_event(EVENT)
    assert alert.standing is Standing.SLOWED
    # The third try's answer waits, right code or wrong: the store is asked at
    # once, and nothing is said until the wait is over.
    node.feed(lobby.PromptDone("a"))
    node.now = 10.0
    assert of(lobby.MatchPasscode, node.key(CODE, "a")) == [
        lobby.MatchPasscode("a", "+18665550199", CODE)
    ]
    assert node.feed(lobby.Matched("a", None)) == []
    due = node.lobby.get_timer()
    assert due is not None and due > 10.0
    assert node.at(due - 0.01) == []
    done = node.at(due)
    refused = rows(cmd.AuditKind.GUESSER_REFUSED, done)
    assert len(refused) == 2
    assert done[-1] == lobby.Play("a", PromptName.BLOCKED, barge_in=False)
    assert node.feed(lobby.PromptDone("a")) == [lobby.HangUp("a", "blocked")]
    node.feed(lobby.Gone("a", "hangup"))
    # The next call from the same identity: 403, written down once a minute.
    done = node.feed(lobby.Invite("b", None, "192.0.2.7", "+18665550199", "Ann"))
    assert done[-1] == lobby.Refuse("b", 403, "Forbidden (too many wrong passcodes)")
    assert len(rows(cmd.AuditKind.BLOCKED, done)) == 1
    done = node.feed(lobby.Invite("b2", None, "192.0.2.7", "+18665550199", "Ann"))
    assert done == [lobby.Refuse("b2", 403, "Forbidden (too many wrong passcodes)")]
    # Another identity is not refused.
    done = node.feed(lobby.Invite("d", None, "192.0.2.8", "+18665550199", "Bob"))
    assert done[0] == lobby.Ring("d")


def test_a_caller_refused_while_slowed_is_told_so_when_the_wait_ends() -> None:
    rules = LobbyRules(guard=GuardRules(max_failures=3, slow_after=2, first_delay=2.0))
    node = Node(rules)
    for call_id in ("a", "b"):
        node.answered(call_id)
    for _ in range(2):
        node.key(CODE, "a")
        node.feed(lobby.Matched("a", None))
        node.feed(lobby.PromptDone("a"))
    for call_id in ("b", "a"):  # slowed: a's answer is queued behind b's
        node.key(CODE, call_id)
        assert node.feed(lobby.Matched(call_id, None)) == []
    due_b = node.lobby.get_timer()
    assert due_b is not None
    done = node.at(due_b)  # b's wrong code is the third failure: refused
    assert done[-1] == lobby.Play("b", PromptName.BLOCKED, barge_in=False)
    due_a = node.lobby.get_timer()
    assert due_a is not None and due_a > due_b
    done = node.at(due_a)
    # Refused while it waited: no wrong code counted, no row, only the goodbye.
    assert rows(cmd.AuditKind.PASSCODE_FAILED, done) == []
    assert done[-1] == lobby.Play("a", PromptName.BLOCKED, barge_in=False)


def test_a_printed_code_skips_the_numbers_drained_budget_and_a_secret_one_waits() -> None:
    rules = LobbyRules(guard=GuardRules(number_budget=Budget(2, 120.0)))
    node = Node(rules)
    for n in range(2):  # two guessers from two numbers drain the number's budget
        node.answered(f"g{n}", source=f"192.0.2.{n + 10}")
        node.key(CODE, f"g{n}")
        done = node.feed(lobby.Matched(f"g{n}", None))
    assert rows(cmd.AuditKind.GUESSER_SLOWED, done)[0].caller_id == "number:+18665550199"
    # The listener code the release prints is answered at once...
    node.answered("l", source="192.0.2.50")
    node.key(CODE, "l")
    assert len(of(cmd.Admit, node.feed(lobby.Matched("l", listener())))) == 1
    # ...the speaker code waits its turn, as a wrong one would.
    node.answered("s", source="192.0.2.51")
    node.key(CODE, "s")
    speaker = lobby.Found(EVENT, cmd.CallerKind.SPEAKER, RECORD)
    assert node.feed(lobby.Matched("s", speaker)) == []
    due = node.lobby.get_timer()
    assert due is not None and due > node.now
    assert len(of(cmd.Admit, node.at(due))) == 1


def test_a_refused_number_that_a_speaker_list_names_is_let_in_and_others_are_not() -> None:
    rules = LobbyRules(guard=GuardRules(max_failures=1))
    node = Node(rules)
    request = invite("<sip:+14155550123@carrier.example>")
    node.feed(lobby.Invite("a", request, "127.0.0.1", "+18665550199", "Ann"))
    node.feed(lobby.DialPlanRead("a", (EVENT,), frozenset({7})))
    node.at(1.0)
    node.feed(lobby.PromptDone("a"))
    node.key(CODE + "#", "a")
    node.feed(lobby.Matched("a", None))  # refused from now on
    node.feed(lobby.Gone("a", "hangup"))
    # The number's plan is not known any more: nothing is sent while it is read.
    node.now = 10.0
    done = node.feed(lobby.Invite("b", request, "127.0.0.1", "+18665550199", "Ann"))
    assert done == [lobby.ReadDialPlan("b", "+18665550199")]
    assert node.at(11.0) == []  # neither rung nor answered before its plan says
    listed = frozenset({"+14155550123"})
    done = node.feed(lobby.DialPlanRead("b", (EVENT,), frozenset({7}), listed))
    assert done[0] == lobby.Ring("b") and of(lobby.Refuse, done) == []
    assert node.at(11.1) == []
    assert of(lobby.Answer, node.at(11.25)) == [lobby.Answer("b")]
    # The same phone on a number whose plan does not list it: refused once read.
    node.feed(lobby.Invite("c", request, "127.0.0.1", "+18665550100", "Ann"))
    done = node.feed(lobby.DialPlanRead("c", (OTHER_EVENT,), frozenset({7})))
    assert of(lobby.Refuse, done) == [
        lobby.Refuse("c", 403, "Forbidden (too many wrong passcodes)")
    ]
    assert done[-1] == lobby.HangUp("c", "refused")
    # With the plan just read, the listed phone is let in at once, another refused at once.
    node.feed(lobby.Invite("d", request, "127.0.0.1", "+18665550199", "Ann"))
    leg = node.lobby.leg("d")
    assert leg is not None and not leg.on_trial


def test_a_replay_caller_keys_the_replay_then_it_hangs_them_up() -> None:
    ended = RECORD.model_copy(update={"state": EventState.ENDED})
    after = RECORD.starts_at + timedelta(hours=3)
    node = Node(wall=after)
    node.answered()
    node.key("9876")
    node.at(node.now + 10)  # the inter-digit timeout submits a short code
    found = lobby.Found(
        EVENT, cmd.CallerKind.REPLAY, ended, replay_ready=after - timedelta(hours=1)
    )
    done = node.feed(lobby.Matched("c", found))
    assert of(cmd.JoinConference, done) == []
    (start,) = of(lobby.StartReplay, done)
    assert start == lobby.StartReplay("c", EVENT)
    (joined,) = of(cmd.RecordAudit, done)
    assert isinstance(joined, cmd.RecordAudit)
    assert joined.kind is cmd.AuditKind.JOIN and joined.role == "replay"
    assert joined.detail["number"] == ""  # nobody vouched for this caller's number
    assert joined.participant_id is not None and joined.participant_id.startswith(f"r{EVENT}-")
    assert node.lobby.stage("c") is Stage.REPLAY
    assert node.feed(lobby.Key("c", "6")) == [lobby.ReplayKey("c", "6")]
    assert node.feed(lobby.ReplayOver("c", "finished")) == [lobby.HangUp("c", "finished")]
    done = node.feed(lobby.Gone("c", "finished"))
    (left,) = done
    assert isinstance(left, cmd.RecordAudit)
    assert left.kind is cmd.AuditKind.LEAVE and left.participant_id == joined.participant_id


def test_a_replay_with_no_recording_says_so_then_hangs_up() -> None:
    ended = RECORD.model_copy(update={"state": EventState.ENDED})
    after = RECORD.starts_at + timedelta(hours=3)
    node = Node(wall=after)
    node.answered()
    node.key("9876#")
    found = lobby.Found(
        EVENT, cmd.CallerKind.REPLAY, ended, replay_ready=after - timedelta(hours=1)
    )
    node.feed(lobby.Matched("c", found))
    done = node.feed(lobby.ReplayMissing("c"))
    assert done == [lobby.Play("c", PromptName.REPLAY_NOT_YET, barge_in=False)]
    assert node.feed(lobby.PromptDone("c")) == [lobby.HangUp("c", "goodbye")]


def test_the_end_of_the_call_says_farewell_then_hangs_up() -> None:
    node = Node()
    node.answered()
    node.key(CODE)
    node.feed(lobby.Matched("c", listener()))
    node.controller.handle(cmd.StartCall(EVENT, EventState.SCHEDULED, node.wall))
    done = node.run(list(node.controller.handle(cmd.EndCall(EVENT, EventState.LIVE, node.wall))))
    assert lobby.Play("c", PromptName.CONFERENCE_ENDING, barge_in=False) in done
    assert node.lobby.stage("c") is Stage.FAREWELL
    assert node.feed(lobby.Key("c", "1")) == []  # keys do nothing while it says goodbye
    assert node.feed(lobby.PromptDone("c")) == [lobby.HangUp("c", "goodbye")]


def test_a_listener_on_a_locked_call_hears_so_from_their_ivr() -> None:
    node = Node()
    node.answered("s")
    node.key(CODE, "s")
    node.feed(lobby.Matched("s", lobby.Found(EVENT, cmd.CallerKind.SPEAKER, RECORD)))
    node.controller.handle(cmd.Moderate(EVENT, _lock(), "op", node.wall))
    node.answered("c")
    node.key(CODE, "c")
    done = node.feed(lobby.Matched("c", listener()))
    assert of(cmd.JoinConference, done) == []
    assert done[-1] == lobby.Play("c", PromptName.LOCKED, barge_in=False)
    assert node.feed(lobby.PromptDone("c")) == [lobby.HangUp("c", "locked")]


def _lock() -> cmd.ModeratorAction:
    return cmd.ModeratorAction(action="lock")


def test_a_silent_leg_is_hung_up_after_the_media_timeout() -> None:
    node = Node()
    node.answered("a")
    node.answered("b")
    node.now = 40.0
    done = node.feed(lobby.HeardCheck({"a": 9.0, "b": 10.5, "gone": 0.0}))
    assert done == [lobby.HangUp("a", "media timeout")]


def test_a_vouched_number_names_the_caller_to_the_controller() -> None:
    request = invite("<sip:+14155550123@carrier.example>")
    node = Node()
    node.feed(lobby.Invite("c", request, "127.0.0.1", "+18665550199", "Ann"))
    leg = node.lobby.leg("c")
    assert leg is not None and leg.identity.source is IdentitySource.FROM_URI
    node.at(1.0)
    node.feed(lobby.PromptDone("c"))
    node.key(CODE + "#")
    (admit,) = of(cmd.Admit, node.feed(lobby.Matched("c", listener())))
    assert isinstance(admit, cmd.Admit) and admit.number == "+14155550123"
    # From an address no trunk vouches for, the same INVITE names nobody.
    node.feed(lobby.Invite("d", request, "192.0.2.7", "+18665550199", "Ann"))
    stranger = node.lobby.leg("d")
    assert stranger is not None and stranger.identity.key == "address:192.0.2.7"


@pytest.mark.parametrize("source", list(Stage))
@pytest.mark.parametrize("target", list(Stage))
def test_every_stage_move_goes_where_the_table_says_or_raises(source: Stage, target: Stage) -> None:
    leg = LobbyLeg(
        "c",
        CallerIdentity("address:x", IdentitySource.ADDRESS),
        "x",
        None,
        "Ann",
        IvrSession(),
        0.0,
        stage=source,
    )
    if target in TRANSITIONS[source]:
        move(leg, target)
        assert leg.stage is target
    else:
        with pytest.raises(StageError):
            move(leg, target)


def test_a_dialled_callee_hears_the_invitation_and_joins_on_one() -> None:
    node = Node()
    done = node.feed(lobby.Dialled("out-1", EVENT, cmd.CallerKind.SPEAKER, RECORD, "+19135550100"))
    assert done == [lobby.Play("out-1", PromptName.PRESS_ONE, barge_in=True)]
    assert node.lobby.stage("out-1") is Stage.INVITED
    assert node.lobby.legs["out-1"].kind is cmd.CallerKind.DIALLED
    assert node.feed(lobby.Key("out-1", "5")) == []  # only 1 joins
    done = node.feed(lobby.Key("out-1", "1"))
    assert done[0] == lobby.Silence("out-1")
    assert of(cmd.JoinConference, done)
    assert done[-1] == lobby.WhisperTo("out-1", PromptName.JOINING_SPEAKER)
    assert node.lobby.stage("out-1") is Stage.CONFERENCE
    member = node.controller.member("out-1")
    assert member is not None and member.caller_id == "+19135550100"
    assert member.role.value == "speaker"
    assert node.feed(lobby.Key("out-1", "1")) == [
        cmd.KeyPressed("out-1", "1", node.wall)
    ]  # on the call, keys are the call's


def test_a_dialled_callee_who_never_presses_one_is_let_go() -> None:
    node = Node()
    node.feed(lobby.Dialled("out-2", EVENT, cmd.CallerKind.LISTENER, RECORD, "+19135550101"))
    prompts = [node.feed(lobby.PromptDone("out-2")) for _ in range(2)]
    assert prompts == [[lobby.Play("out-2", PromptName.PRESS_ONE, barge_in=True)]] * 2
    assert node.feed(lobby.PromptDone("out-2")) == [
        lobby.HangUp("out-2", "no answer to the invitation")
    ]
