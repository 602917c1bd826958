from __future__ import annotations

import pytest

from callbridge.events.schema import MAX_PASSCODE_DIGITS, MIN_PASSCODE_DIGITS
from callbridge.ivr.machine import (
    Action,
    Answered,
    CodeLengths,
    Digit,
    Hangup,
    IvrRules,
    IvrSession,
    IvrTransitionError,
    Join,
    LookupPasscode,
    LookupResult,
    Outcome,
    PlayPrompt,
    PromptFinished,
    State,
    StopPrompt,
    TimerFired,
)
from callbridge.media.prompts import PromptName


def actions(ivr: IvrSession) -> list[Action]:
    out = []
    while (action := ivr.next_action()) is not None:
        out.append(action)
    return out


def answered(ivr: IvrSession | None = None) -> IvrSession:
    ivr = ivr or IvrSession()
    ivr.handle(Answered(0.0))
    assert actions(ivr) == [PlayPrompt(PromptName.WELCOME, barge_in=True)]
    ivr.handle(PromptFinished(5.0))
    assert ivr.state is State.COLLECTING
    return ivr


def key(ivr: IvrSession, digits: str, now: float = 6.0) -> list[Action]:
    for d in digits:
        ivr.handle(Digit(d, now))
    return actions(ivr)


def test_listener_code_with_pound_joins_listen_only() -> None:
    ivr = answered()
    assert key(ivr, "8024721#") == [LookupPasscode("8024721")]
    ivr.handle(LookupResult(Outcome.JOINED, 7.0, event_id=4, role="listener"))
    assert actions(ivr) == [
        Join(4, "listener", hold=False),
        PlayPrompt(PromptName.JOINING_LISTENER, barge_in=False),
    ]
    assert ivr.state is State.DONE
    ivr.handle(PromptFinished(9.0))  # the prompt ends in the call; nothing more to do
    assert actions(ivr) == []


def test_max_length_submits_without_pound() -> None:
    ivr = answered()
    ivr.handle(CodeLengths(frozenset({7}), 5.5))
    assert key(ivr, "5550123") == [LookupPasscode("5550123")]
    ivr.handle(LookupResult(Outcome.JOINED, 7.0, event_id=4, role="speaker", hold=True))
    assert actions(ivr) == [
        Join(4, "speaker", hold=True),
        PlayPrompt(PromptName.JOINING_SPEAKER, barge_in=False),
    ]


def test_barge_in_keeps_the_key() -> None:
    ivr = IvrSession()
    ivr.handle(Answered(0.0))
    actions(ivr)
    ivr.handle(Digit("8", 1.0))
    assert actions(ivr) == [StopPrompt()]
    assert ivr.digits == "8"
    assert key(ivr, "024721#") == [LookupPasscode("8024721")]


def test_short_code_submits_on_inter_digit_timeout() -> None:
    ivr = answered()
    key(ivr, "4417", now=6.0)
    assert ivr.get_timer() == 11.0
    ivr.handle(TimerFired(10.0))  # early: nothing happens
    assert actions(ivr) == []
    ivr.handle(TimerFired(11.0))
    assert actions(ivr) == [LookupPasscode("4417")]


def test_wrong_code_three_times_then_goodbye() -> None:
    ivr = answered()
    for attempt in range(1, 4):
        assert key(ivr, "1111111#") == [LookupPasscode("1111111")]
        ivr.handle(LookupResult(Outcome.INVALID, 7.0))
        if attempt < 3:
            assert actions(ivr) == [PlayPrompt(PromptName.INVALID_RETRY, barge_in=True)]
            ivr.handle(PromptFinished(8.0))
    assert actions(ivr) == [PlayPrompt(PromptName.INVALID_GOODBYE, barge_in=False)]
    assert ivr.state is State.FAREWELL
    ivr.handle(PromptFinished(10.0))
    assert actions(ivr) == [Hangup("invalid passcode, 3 tries")]


def test_no_input_counts_as_a_try() -> None:
    ivr = answered()
    assert ivr.get_timer() == 15.0
    ivr.handle(TimerFired(15.0))
    assert actions(ivr) == [PlayPrompt(PromptName.NO_INPUT, barge_in=True)]
    assert ivr.tries == 1


def test_pound_alone_counts_as_a_try() -> None:
    ivr = answered()
    assert key(ivr, "#") == [PlayPrompt(PromptName.NO_INPUT, barge_in=True)]


@pytest.mark.parametrize(
    ("outcome", "prompt"),
    [
        (Outcome.NOT_STARTED, PromptName.NOT_STARTED),
        (Outcome.ENDED, PromptName.ENDED),
        (Outcome.BLOCKED, PromptName.BLOCKED),
        (Outcome.LOCKED, PromptName.LOCKED),
        (Outcome.EXPIRED, PromptName.REPLAY_EXPIRED),
    ],
)
def test_refusals_say_why_and_hang_up(outcome: Outcome, prompt: PromptName) -> None:
    ivr = answered()
    key(ivr, "8024721#")
    ivr.handle(LookupResult(outcome, 7.0))
    assert actions(ivr) == [PlayPrompt(prompt, barge_in=False)]
    ivr.handle(PromptFinished(9.0))
    assert actions(ivr) == [Hangup(outcome.value)]


def test_keys_during_lookup_are_ignored() -> None:
    ivr = answered()
    key(ivr, "8024721#")
    assert key(ivr, "99") == []
    assert ivr.state is State.LOOKING_UP


def test_unlisted_transitions_raise() -> None:
    ivr = IvrSession()
    with pytest.raises(IvrTransitionError):
        ivr.handle(Digit("1", 0.0))
    ivr = answered()
    with pytest.raises(IvrTransitionError):
        ivr.handle(Answered(1.0))
    with pytest.raises(IvrTransitionError):
        ivr.handle(LookupResult(Outcome.INVALID, 1.0))


def test_digit_buffer_is_capped() -> None:
    ivr = answered(IvrSession(IvrRules(max_digits=12)))
    actions_seen = key(ivr, "1" * 40)
    assert actions_seen == [LookupPasscode("1" * 12)]


@pytest.mark.parametrize("length", range(MIN_PASSCODE_DIGITS, MAX_PASSCODE_DIGITS + 1))
def test_every_length_the_schema_allows_can_be_keyed(length: int) -> None:
    code = "9" * length
    # With '#'.
    ivr = answered()
    ivr.handle(CodeLengths(frozenset({length}), 5.5))
    assert key(ivr, code + "#") == [LookupPasscode(code)]
    # Without '#': the code's length ends it when it is the only length on the number.
    ivr = answered()
    ivr.handle(CodeLengths(frozenset({length}), 5.5))
    assert key(ivr, code) == [LookupPasscode(code)]
    # Before the lengths are known: '#' or the schema's longest code.
    ivr = answered()
    assert key(ivr, code + "#") == [LookupPasscode(code)]


def test_mixed_lengths_end_on_the_longest_or_pound_or_silence() -> None:
    lengths = frozenset({4, 7, 10})
    ivr = answered()
    ivr.handle(CodeLengths(lengths, 5.5))
    assert key(ivr, "4417") == []  # a 7- or 10-digit code may still follow
    ivr.handle(TimerFired(6.0 + IvrRules().inter_digit_timeout))
    assert actions(ivr) == [LookupPasscode("4417")]
    ivr = answered()
    ivr.handle(CodeLengths(lengths, 5.5))
    assert key(ivr, "8024721#") == [LookupPasscode("8024721")]
    ivr = answered()
    ivr.handle(CodeLengths(lengths, 5.5))
    assert key(ivr, "5550123456") == [LookupPasscode("5550123456")]


def test_lengths_that_arrive_after_a_whole_code_submit_it() -> None:
    ivr = answered()
    assert key(ivr, "8024721") == []
    ivr.handle(CodeLengths(frozenset({7}), 6.5))
    assert actions(ivr) == [LookupPasscode("8024721")]
    assert ivr.state is State.LOOKING_UP


def test_lengths_in_any_state_are_accepted() -> None:
    ivr = IvrSession()
    ivr.handle(CodeLengths(frozenset({7}), 0.0))
    assert ivr.state is State.IDLE
    ivr.handle(Answered(0.1))
    ivr.handle(CodeLengths(frozenset({99, 0}), 0.2))  # nothing usable: the schema's cap
    assert ivr.longest_code is None
    assert ivr.state is State.PROMPTING


def test_only_ascii_digits_are_collected() -> None:
    ivr = answered()
    key(ivr, "12\u00b234")
    assert ivr.digits == "1234"


def test_a_pound_after_a_code_its_length_ended_is_not_a_try() -> None:
    ivr = answered()
    ivr.handle(CodeLengths(frozenset({7}), 5.5))
    assert key(ivr, "1111111") == [LookupPasscode("1111111")]
    ivr.handle(LookupResult(Outcome.INVALID, 7.0))
    assert actions(ivr) == [PlayPrompt(PromptName.INVALID_RETRY, barge_in=True)]
    assert key(ivr, "#", now=7.1) == []  # the habitual '#' arrives during the retry prompt
    assert ivr.tries == 1 and ivr.state is State.PROMPTING
    # A '#' on its own later is a try, as before.
    assert key(ivr, "#", now=8.0) == [StopPrompt(), PlayPrompt(PromptName.NO_INPUT, barge_in=True)]
    assert ivr.tries == 2


def test_a_pound_during_the_lookup_is_swallowed_once() -> None:
    ivr = answered()
    ivr.handle(CodeLengths(frozenset({7}), 5.5))
    assert key(ivr, "8024721#") == [LookupPasscode("8024721")]
    ivr.handle(LookupResult(Outcome.INVALID, 7.0))
    actions(ivr)
    assert key(ivr, "8024721#", now=8.0) == [StopPrompt(), LookupPasscode("8024721")]
    ivr.handle(LookupResult(Outcome.INVALID, 9.0))
    actions(ivr)
    key(ivr, "#", now=9.5)  # a lone '#' later is a try again: the third
    assert ivr.tries == 3 and ivr.state is State.FAREWELL
