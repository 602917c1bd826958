"""Personal PINs in the lobby and the controller, in memory on a clock the test sets.

A registrant's PIN joins them as a listener named by their registration,
once at a time; its answer waits on the guessing budgets as a secret code's
does; a locked call keeps registrants out as it does listeners; and where
the event requires registration the public listener code opens nothing
while the speakers' and the PINs still do.
"""

from __future__ import annotations

from callbridge.bridge import commands as cmd
from callbridge.bridge import lobby
from callbridge.bridge.control import Action, Role
from callbridge.bridge.lobby import LobbyRules, Stage
from callbridge.bridge.queue import Floor
from callbridge.events.schema import EventState
from callbridge.ivr.guard import Budget, GuardRules
from callbridge.media.prompts import PromptName
from tests.bridge.test_controller import EVENT, RECORD
from tests.bridge.test_lobby import CODE, Node, listener, of, rows

PIN = "4815162342"
JANE = cmd.Registrant(41, "Jane Smith", "Acme Capital", "jane@acme.example")


def registrant(who: cmd.Registrant = JANE) -> lobby.Found:
    return lobby.Found(EVENT, cmd.CallerKind.REGISTRANT, RECORD, registrant=who)


def dial(node: Node, call_id: str, found: lobby.Found | None, source: str) -> list[object]:
    """A caller answered, keying a PIN, and the store's answer."""
    node.answered(call_id, source=source)
    node.key(PIN, call_id)
    return node.feed(lobby.Matched(call_id, found))


def test_a_pin_joins_its_registrant_as_a_listener_named_by_their_registration() -> None:
    node = Node()
    done = dial(node, "c", registrant(), "192.0.2.7")
    (admit,) = of(cmd.Admit, done)
    assert isinstance(admit, cmd.Admit)
    assert (admit.role, admit.registrant) == (cmd.CallerKind.REGISTRANT, JANE)
    (join,) = of(cmd.JoinConference, done)
    assert isinstance(join, cmd.JoinConference) and join.role is Role.LISTENER
    (joined,) = rows(cmd.AuditKind.JOIN, done)
    assert joined.detail["registrant"] == 41 and joined.role == "listener"
    (named,) = rows(cmd.AuditKind.NAME, done)
    assert (named.actor, named.detail) == ("registration", {"name": "Jane Smith, Acme Capital"})
    assert of(cmd.NameParticipant, done) == [
        cmd.NameParticipant(EVENT, join.participant_id, "Jane Smith, Acme Capital")
    ]
    assert done[-1] == lobby.WhisperTo("c", PromptName.JOINING_LISTENER)
    leg = node.lobby.leg("c")
    assert leg is not None and leg.kind is cmd.CallerKind.REGISTRANT
    assert leg.stage is Stage.CONFERENCE
    # Their *1 puts "Jane Smith, Acme Capital" in the queue, as a listener's would.
    call = node.controller.call(EVENT)
    assert call is not None
    node.key("*1")
    assert call.queue.floor(join.participant_id) is Floor.QUEUED
    assert call.members[join.participant_id].name == "Jane Smith, Acme Capital"


def test_a_pin_works_once_at_a_time_and_again_once_its_caller_left() -> None:
    node = Node()
    dial(node, "first", registrant(), "192.0.2.7")
    done = dial(node, "second", registrant(), "192.0.2.8")
    # Refused with its own prompt; the caller on the call stays.
    assert of(cmd.JoinConference, done) == []
    (answer,) = of(cmd.AnswerCaller, done)
    assert isinstance(answer, cmd.AnswerCaller) and answer.outcome.value == "pin_in_use"
    assert done[-1] == lobby.Play("second", PromptName.PIN_IN_USE, barge_in=False)
    assert node.feed(lobby.PromptDone("second")) == [lobby.HangUp("second", "pin_in_use")]
    assert node.lobby.stage("first") is Stage.CONFERENCE
    # Another registrant's PIN is theirs: they join beside her.
    john = cmd.Registrant(42, "John Roe", None, None)
    assert len(of(cmd.JoinConference, dial(node, "john", registrant(john), "192.0.2.9"))) == 1
    # Once she has left, her PIN lets her in again.
    node.run(list(node.controller.handle(cmd.LeftCall("first", "hangup", node.wall))))
    node.feed(lobby.Gone("first", "hangup"))
    assert len(of(cmd.JoinConference, dial(node, "again", registrant(), "192.0.2.7"))) == 1


def test_a_pins_answer_waits_on_the_drained_budget_as_a_secret_codes_does() -> None:
    node = Node(LobbyRules(guard=GuardRules(number_budget=Budget(2, 120.0))))
    for n in range(2):  # two guessers from two numbers drain the number's budget
        dial(node, f"g{n}", None, f"192.0.2.{n + 10}")
    assert dial(node, "pin", registrant(), "192.0.2.51") == []
    due = node.lobby.get_timer()
    assert due is not None and due > node.now
    assert len(of(cmd.JoinConference, node.at(due))) == 1


def test_a_locked_call_keeps_registrants_out_as_it_does_listeners() -> None:
    node = Node()
    lock = cmd.Moderate(EVENT, Action(action="lock"), "op", node.wall, EventState.SCHEDULED)
    node.controller.handle(lock)
    done = dial(node, "c", registrant(), "192.0.2.7")
    assert done[-1] == lobby.Play("c", PromptName.LOCKED, barge_in=False)


def test_where_registration_is_required_the_public_code_opens_nothing_but_pins_do() -> None:
    node = Node()
    record = RECORD.model_copy(update={"phone_requires_registration": True})
    node.answered("public", source="192.0.2.7")
    node.key(CODE, "public")
    done = node.feed(lobby.Matched("public", lobby.Found(EVENT, cmd.CallerKind.LISTENER, record)))
    assert of(cmd.JoinConference, done) == []
    assert done[-1] == lobby.Play("public", PromptName.REGISTRATION_REQUIRED, barge_in=False)
    # Not a wrong code: the guard counts nothing against the caller.
    assert rows(cmd.AuditKind.PASSCODE_FAILED, done) == []
    speaker = lobby.Found(EVENT, cmd.CallerKind.SPEAKER, record)
    node.answered("speaker", source="192.0.2.8")
    node.key(CODE, "speaker")
    assert len(of(cmd.JoinConference, node.feed(lobby.Matched("speaker", speaker)))) == 1
    pin = lobby.Found(EVENT, cmd.CallerKind.REGISTRANT, record, registrant=JANE)
    assert len(of(cmd.JoinConference, dial(node, "jane", pin, "192.0.2.9"))) == 1
    # Where it is not required, the public code still joins.
    node.answered("open", source="192.0.2.10")
    node.key(CODE, "open")
    assert len(of(cmd.JoinConference, node.feed(lobby.Matched("open", listener())))) == 1


def test_a_registrants_label_is_one_plain_line_of_at_most_a_names_length() -> None:
    long = cmd.Registrant(1, "Jane\u202e  Smith", "A" * 200, None)
    assert long.label.startswith("Jane Smith, AAA") and len(long.label) == 100
    assert cmd.Registrant(2, "Jane Smith", None, None).label == "Jane Smith"


def test_a_registrant_the_bridge_called_joins_on_one_named_as_their_pin_would() -> None:
    """Call me: the dialled leg stays DIALLED; on '1' it joins as the registrant."""
    node = Node()
    called = lobby.Dialled("out-9", EVENT, cmd.CallerKind.REGISTRANT, RECORD, "+19135550100", JANE)
    assert node.feed(called) == [lobby.Play("out-9", PromptName.PRESS_ONE, barge_in=True)]
    done = node.feed(lobby.Key("out-9", "1"))
    (admit,) = of(cmd.Admit, done)
    assert isinstance(admit, cmd.Admit)
    assert (admit.role, admit.registrant, admit.number) == (
        cmd.CallerKind.REGISTRANT,
        JANE,
        "+19135550100",
    )
    (join,) = of(cmd.JoinConference, done)
    assert isinstance(join, cmd.JoinConference) and join.role is Role.LISTENER
    (joined,) = rows(cmd.AuditKind.JOIN, done)
    assert joined.detail["registrant"] == 41 and joined.detail["number"] == "+19135550100"
    assert of(cmd.NameParticipant, done) == [
        cmd.NameParticipant(EVENT, join.participant_id, "Jane Smith, Acme Capital")
    ]
    assert done[-1] == lobby.WhisperTo("out-9", PromptName.JOINING_LISTENER)
    leg = node.lobby.leg("out-9")
    assert leg is not None and leg.kind is cmd.CallerKind.DIALLED
    # Her PIN now finds her on the call: one registrant, one line.
    done = dial(node, "c2", registrant(), "192.0.2.7")
    assert not of(cmd.JoinConference, done)
