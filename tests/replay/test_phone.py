# The playback's state changes under method calls, which mypy's narrowing cannot see.
# mypy: disable-error-code="comparison-overlap"
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.media.mixer import PHONE_FRAME_SAMPLES, PHONE_RATE, Pcm
from callbridge.media.prompts import PromptLibrary, PromptName
from callbridge.replay.phone import (
    KEYPAD,
    TRANSITIONS,
    EndReason,
    Hangup,
    Input,
    Paused,
    PromptStarted,
    ReplayAction,
    ReplayPlayback,
    ReplayRules,
    ReplayTransitionError,
    Resumed,
    Seeked,
    State,
)
from callbridge.rtp.dtmf import EVENT_DIGITS

IGNORED_KEYS = "456789*#ABCD"
PROMPT_LENGTHS = {
    PromptName.REPLAY_WELCOME: 3,
    PromptName.REPLAY_CONTROLS: 4,
    PromptName.REPLAY_PAUSED: 2,
    PromptName.REPLAY_ENDED: 5,
}
SKIP_FRAMES = 10 * PHONE_RATE // PHONE_FRAME_SAMPLES  # 10 s = 500 frames


class FakePrompts:
    """Prompts of a few frames each, every sample the prompt's own negative value."""

    def __init__(self, lengths: dict[PromptName, int] = PROMPT_LENGTHS) -> None:
        self.lengths = lengths

    def frames(self, name: PromptName) -> Sequence[Pcm]:
        value = -1 - list(PromptName).index(name)
        return [np.full(PHONE_FRAME_SAMPLES, value, dtype=np.int16)] * self.lengths.get(name, 3)


def recording(samples: int) -> Pcm:
    """Frame n of the recording is all n + 1: a frame says where it came from."""
    frames = -(-samples // PHONE_FRAME_SAMPLES)
    return np.repeat(np.arange(1, frames + 1, dtype=np.int16), PHONE_FRAME_SAMPLES)[:samples]


def seconds(s: float) -> int:
    return round(s * PHONE_RATE)


def label(frame: Pcm) -> str | int | PromptName:
    """What a frame is: "silence", a prompt, or the index of a recording frame."""
    assert frame.shape == (PHONE_FRAME_SAMPLES,) and frame.dtype == np.int16
    if not frame.any():
        return "silence"
    first = int(frame[0])
    if first < 0:
        return list(PromptName)[-1 - first]
    return first - 1


def playback(
    length_s: float = 60.0,
    rules: ReplayRules | None = None,
) -> ReplayPlayback:
    return ReplayPlayback(recording(seconds(length_s)), FakePrompts(), rules or ReplayRules())


def play(p: ReplayPlayback, ticks: int, now: float = 0.0) -> list[str | int | PromptName]:
    return [label(p.next_frame(now + 0.02 * i)) for i in range(ticks)]


def drain(p: ReplayPlayback) -> list[ReplayAction]:
    actions = []
    while (action := p.next_action()) is not None:
        actions.append(action)
    return actions


def press(p: ReplayPlayback, digit: str, now: float = 0.0) -> list[ReplayAction]:
    p.press(digit, now)
    return drain(p)


# -- playing and the end -------------------------------------------------------------------------


def test_plays_the_recording_a_frame_per_tick() -> None:
    p = playback()
    assert p.state is State.PLAYING
    assert play(p, 5) == [0, 1, 2, 3, 4]
    assert p.position == 5 * PHONE_FRAME_SAMPLES
    assert p.position_s == pytest.approx(0.1)
    assert p.duration_s == 60.0
    assert drain(p) == []


def test_frames_are_copies_not_views_of_the_recording() -> None:
    p = playback()
    frame = p.next_frame(0.0)
    frame[:] = 0
    assert p.recording[0] == 1


def test_the_end_plays_the_closing_prompt_then_hangs_up_once() -> None:
    # 1.01 s: 50 whole frames and a last one of 80 samples, padded with silence.
    p = playback(length_s=1.01)
    frames = [p.next_frame(0.0) for _ in range(51)]
    assert [label(f) for f in frames] == list(range(51))
    assert not frames[-1][80:].any() and frames[-1][:80].all()
    assert p.position == p.length
    assert drain(p) == []
    assert play(p, 5) == [PromptName.REPLAY_ENDED] * 5
    assert p.state is State.CLOSING
    assert drain(p) == [PromptStarted(PromptName.REPLAY_ENDED)]
    assert play(p, 3) == ["silence"] * 3
    assert p.state is State.DONE
    assert p.end_reason is EndReason.FINISHED
    assert drain(p) == [Hangup(EndReason.FINISHED)]
    assert play(p, 3) == ["silence"] * 3
    assert drain(p) == []


@pytest.mark.parametrize("digit", list(EVENT_DIGITS))
def test_keys_are_ignored_while_closing_and_done(digit: str) -> None:
    p = playback(length_s=0.02)
    play(p, 2)
    assert p.state is State.CLOSING
    drain(p)
    assert press(p, digit) == []
    assert play(p, 5) == [PromptName.REPLAY_ENDED] * 4 + ["silence"]  # not restarted
    assert p.state is State.DONE
    assert drain(p) == [Hangup(EndReason.FINISHED)]
    assert press(p, digit) == []
    assert p.state is State.DONE


def test_an_empty_recording_goes_straight_to_the_closing_prompt() -> None:
    p = playback(length_s=0)
    assert play(p, 6) == [PromptName.REPLAY_ENDED] * 5 + ["silence"]
    assert drain(p) == [PromptStarted(PromptName.REPLAY_ENDED), Hangup(EndReason.FINISHED)]


# -- seeking --------------------------------------------------------------------------------------


def test_back_ten_seconds() -> None:
    p = playback()
    p.position = seconds(25)
    assert press(p, "1") == [Seeked(15.0)]
    assert p.state is State.PLAYING
    assert play(p, 1) == [15 * 50]


def test_back_stops_at_the_start() -> None:
    p = playback()
    play(p, 100)  # 2 s in
    assert press(p, "1") == [Seeked(0.0)]
    assert press(p, "1") == [Seeked(0.0)]
    assert p.position == 0
    assert play(p, 1) == [0]


def test_back_from_the_very_end_plays_on() -> None:
    p = playback(length_s=12)
    play(p, 600)  # every frame sent; the next tick would close
    assert p.position == p.length and p.state is State.PLAYING
    assert press(p, "1") == [Seeked(2.0)]
    assert play(p, 1) == [100]


def test_back_on_an_empty_recording_stays_put_and_the_next_tick_closes() -> None:
    p = playback(length_s=0)
    assert press(p, "1") == [Seeked(0.0)]
    assert p.state is State.PLAYING
    assert play(p, 1) == [PromptName.REPLAY_ENDED]


def test_forward_ten_seconds() -> None:
    p = playback()
    play(p, 50)
    assert press(p, "3") == [Seeked(11.0)]
    assert play(p, 1) == [11 * 50]


@pytest.mark.parametrize("start_s", [50.0, 50.02, 55.0, 59.99, 60.0])
def test_forward_to_or_past_the_end_closes(start_s: float) -> None:
    p = playback()
    p.position = seconds(start_s)
    assert press(p, "3") == [Seeked(60.0), PromptStarted(PromptName.REPLAY_ENDED)]
    assert p.position == p.length
    assert p.state is State.CLOSING
    assert play(p, 6) == [PromptName.REPLAY_ENDED] * 5 + ["silence"]
    assert drain(p) == [Hangup(EndReason.FINISHED)]


def test_forward_just_short_of_the_end_plays_the_rest() -> None:
    p = playback()
    p.position = seconds(49.98)
    assert press(p, "3") == [Seeked(59.98)]
    assert play(p, 2) == [2999, PromptName.REPLAY_ENDED]


# -- pause ----------------------------------------------------------------------------------------


def test_pause_plays_the_pause_prompt_then_silence_and_resumes_where_it_was() -> None:
    p = playback()
    play(p, 10)
    assert press(p, "2", now=1.0) == [Paused(0.2), PromptStarted(PromptName.REPLAY_PAUSED)]
    assert p.state is State.PAUSED
    assert play(p, 5, now=1.0) == [PromptName.REPLAY_PAUSED] * 2 + ["silence"] * 3
    assert p.position == 10 * PHONE_FRAME_SAMPLES
    assert press(p, "2", now=2.0) == [Resumed(0.2)]
    assert p.state is State.PLAYING
    assert play(p, 2, now=2.0) == [10, 11]


def test_resume_during_the_pause_prompt_cuts_it_short() -> None:
    p = playback()
    press(p, "2")
    assert play(p, 1) == [PromptName.REPLAY_PAUSED]
    press(p, "2")
    assert play(p, 2) == [0, 1]


def test_pause_without_a_pause_prompt_is_silent() -> None:
    p = playback(rules=ReplayRules(pause_prompt=None))
    assert press(p, "2") == [Paused(0.0)]
    assert play(p, 3) == ["silence"] * 3


def test_seeking_while_paused_stays_paused() -> None:
    p = playback()
    p.position = seconds(30)
    press(p, "2")
    assert press(p, "1") == [Seeked(20.0)]
    assert p.state is State.PAUSED
    assert press(p, "3") == [Seeked(30.0)]
    assert p.state is State.PAUSED
    assert play(p, 3) == ["silence"] * 3  # the pause prompt was cut by the key
    press(p, "2")
    assert play(p, 1) == [30 * 50]


def test_forward_past_the_end_while_paused_closes() -> None:
    p = playback()
    p.position = seconds(55)
    press(p, "2")
    assert press(p, "3") == [Seeked(60.0), PromptStarted(PromptName.REPLAY_ENDED)]
    assert p.state is State.CLOSING
    assert p.get_timer() is None


def test_paused_too_long_gets_the_closing_prompt_and_a_hangup() -> None:
    p = playback()
    press(p, "2", now=100.0)
    assert p.get_timer() == 400.0
    assert play(p, 3, now=399.9) == [PromptName.REPLAY_PAUSED] * 2 + ["silence"]
    assert p.state is State.PAUSED
    drain(p)
    assert label(p.next_frame(400.0)) is PromptName.REPLAY_ENDED
    assert p.state is State.CLOSING
    assert p.get_timer() is None
    assert drain(p) == [PromptStarted(PromptName.REPLAY_ENDED)]
    play(p, 5, now=400.02)
    assert p.end_reason is EndReason.PAUSE_TIMEOUT
    assert drain(p) == [Hangup(EndReason.PAUSE_TIMEOUT)]


def test_the_pause_timeout_is_configurable() -> None:
    p = playback(rules=ReplayRules(pause_timeout_s=30.0))
    press(p, "2", now=0.0)
    assert p.get_timer() == 30.0
    p.next_frame(29.99)
    assert p.state is State.PAUSED
    p.next_frame(30.0)
    assert p.state is State.CLOSING


def test_a_control_key_while_paused_restarts_the_timeout_an_ignored_key_does_not() -> None:
    p = playback()
    p.position = seconds(30)
    press(p, "2", now=0.0)
    press(p, "1", now=200.0)
    assert p.get_timer() == 500.0
    press(p, "5", now=250.0)
    assert p.get_timer() == 500.0
    p.next_frame(499.0)
    assert p.state is State.PAUSED
    p.next_frame(500.0)
    assert p.state is State.CLOSING


def test_a_key_after_the_deadline_comes_too_late() -> None:
    p = playback()
    press(p, "2", now=0.0)
    assert press(p, "2", now=300.0) == [PromptStarted(PromptName.REPLAY_ENDED)]
    assert p.state is State.CLOSING
    assert p.end_reason is EndReason.PAUSE_TIMEOUT


# -- the controls prompt --------------------------------------------------------------------------


def test_controls_then_playback_resumes_at_the_same_position() -> None:
    p = playback()
    assert play(p, 7) == list(range(7))
    assert press(p, "0") == [PromptStarted(PromptName.REPLAY_CONTROLS)]
    assert p.state is State.CONTROLS
    assert play(p, 6) == [PromptName.REPLAY_CONTROLS] * 4 + [7, 8]
    assert p.state is State.PLAYING
    assert drain(p) == []


def test_controls_while_paused_goes_back_to_paused_with_a_fresh_timeout() -> None:
    p = playback()
    play(p, 3)
    press(p, "2", now=0.0)
    press(p, "0", now=100.0)
    assert p.get_timer() is None  # no timeout while the controls are read out
    assert play(p, 6, now=100.0) == [PromptName.REPLAY_CONTROLS] * 4 + ["silence"] * 2
    assert p.state is State.PAUSED
    assert p.get_timer() == pytest.approx(100.0 + 0.02 * 4 + 300.0)
    press(p, "2", now=101.0)
    assert play(p, 1) == [3]


def test_zero_during_the_controls_starts_them_again() -> None:
    p = playback()
    press(p, "0")
    play(p, 3)
    assert press(p, "0") == [PromptStarted(PromptName.REPLAY_CONTROLS)]
    assert play(p, 5) == [PromptName.REPLAY_CONTROLS] * 4 + [0]


@pytest.mark.parametrize("digit", list(IGNORED_KEYS))
def test_an_ignored_key_during_the_controls_lets_them_finish(digit: str) -> None:
    p = playback()
    press(p, "0")
    play(p, 2)
    assert press(p, digit) == []
    assert play(p, 3) == [PromptName.REPLAY_CONTROLS] * 2 + [0]


def test_a_control_key_during_the_controls_cuts_them_short_and_acts() -> None:
    p = playback()
    p.position = seconds(30)
    press(p, "0")
    play(p, 1)
    assert press(p, "1") == [Seeked(20.0)]
    assert p.state is State.PLAYING
    assert play(p, 1) == [20 * 50]
    press(p, "0")
    assert press(p, "2") == [Paused(20.02), PromptStarted(PromptName.REPLAY_PAUSED)]
    assert p.state is State.PAUSED
    press(p, "0")
    assert press(p, "2") == [Resumed(20.02)]
    assert p.state is State.PLAYING
    press(p, "0")
    assert press(p, "3") == [Seeked(30.02)]
    assert play(p, 1) == [30 * 50 + 1]


def test_forward_past_the_end_during_the_controls_closes() -> None:
    p = playback()
    p.position = seconds(55)
    press(p, "0")
    assert press(p, "3") == [Seeked(60.0), PromptStarted(PromptName.REPLAY_ENDED)]
    assert play(p, 6) == [PromptName.REPLAY_ENDED] * 5 + ["silence"]


# -- the intro ------------------------------------------------------------------------------------


def test_an_intro_plays_before_the_recording() -> None:
    p = playback(rules=ReplayRules(intro=PromptName.REPLAY_WELCOME))
    assert p.state is State.INTRO
    assert drain(p) == [PromptStarted(PromptName.REPLAY_WELCOME)]
    assert play(p, 5) == [PromptName.REPLAY_WELCOME] * 3 + [0, 1]


def test_a_control_key_cuts_the_intro_short() -> None:
    p = playback(rules=ReplayRules(intro=PromptName.REPLAY_WELCOME))
    play(p, 1)
    assert press(p, "3") == [PromptStarted(PromptName.REPLAY_WELCOME), Seeked(10.0)]
    assert play(p, 1) == [500]


@pytest.mark.parametrize("digit", list(IGNORED_KEYS))
def test_an_ignored_key_lets_the_intro_finish(digit: str) -> None:
    p = playback(rules=ReplayRules(intro=PromptName.REPLAY_WELCOME))
    play(p, 1)
    press(p, digit)
    assert play(p, 3) == [PromptName.REPLAY_WELCOME] * 2 + [0]


def test_controls_during_the_intro_then_the_recording_from_the_start() -> None:
    p = playback(rules=ReplayRules(intro=PromptName.REPLAY_WELCOME))
    play(p, 2)
    press(p, "0")
    assert play(p, 5) == [PromptName.REPLAY_CONTROLS] * 4 + [0]


# -- keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("digit", list(IGNORED_KEYS))
def test_other_keys_are_ignored_while_playing_and_paused(digit: str) -> None:
    p = playback()
    play(p, 3)
    assert press(p, digit) == []
    assert p.state is State.PLAYING
    assert play(p, 1) == [3]
    press(p, "2")
    assert play(p, 1) == [PromptName.REPLAY_PAUSED]
    assert press(p, digit) == []
    assert p.state is State.PAUSED
    assert play(p, 2) == [PromptName.REPLAY_PAUSED, "silence"]


@pytest.mark.parametrize("digit", ["", "12", "x", "a", " ", "E"])
def test_a_string_that_is_no_keypad_digit_is_a_bug(digit: str) -> None:
    with pytest.raises(ValueError, match="not a keypad digit"):
        playback().press(digit, 0.0)


def test_the_skip_is_configurable() -> None:
    p = playback(rules=ReplayRules(skip_s=15.0))
    p.position = seconds(20)
    assert press(p, "1") == [Seeked(5.0)]


def test_a_recording_of_two_channels_is_refused() -> None:
    with pytest.raises(ValueError, match="one channel"):
        ReplayPlayback(np.zeros((2, 160), dtype=np.int16), FakePrompts())


def test_the_shipped_prompts_are_a_prompt_source() -> None:
    p = ReplayPlayback(recording(seconds(0.1)), PromptLibrary())
    p.press("0", 0.0)
    frames = [p.next_frame(0.0) for _ in range(3)]
    assert all(f.shape == (PHONE_FRAME_SAMPLES,) for f in frames)
    assert label(frames[0]) != 0  # a prompt, not the recording


# -- the table ------------------------------------------------------------------------------------


def in_state(state: State, resume_to: State = State.PLAYING) -> ReplayPlayback:
    """A playback 30 s into a 60 s recording, in ``state``."""
    p = playback(rules=ReplayRules(intro=PromptName.REPLAY_WELCOME))
    p.position = seconds(30)
    if state is not State.INTRO:
        p.press("3", 0.0)
        p.press("1", 0.0)
        assert p.state is State.PLAYING
    if state is State.PAUSED or (state is State.CONTROLS and resume_to is State.PAUSED):
        p.press("2", 0.0)
    if state is State.CONTROLS:
        p.press("0", 0.0)
    if state in (State.CLOSING, State.DONE):
        p.position = p.length
        p.next_frame(0.0)
    if state is State.DONE:
        while p.state is State.CLOSING:
            p.next_frame(0.0)
    assert p.state is state
    drain(p)
    return p


# (state, what CONTROLS returns to, input) → the state it leads to, 30 s into 60.
EXPECTED: list[tuple[State, State, Input, State]] = [
    (State.INTRO, State.PLAYING, Input.BACK, State.PLAYING),
    (State.INTRO, State.PLAYING, Input.PAUSE, State.PAUSED),
    (State.INTRO, State.PLAYING, Input.FORWARD, State.PLAYING),
    (State.INTRO, State.PLAYING, Input.CONTROLS, State.CONTROLS),
    (State.INTRO, State.PLAYING, Input.OTHER_KEY, State.INTRO),
    (State.INTRO, State.PLAYING, Input.PROMPT_DONE, State.PLAYING),
    (State.PLAYING, State.PLAYING, Input.BACK, State.PLAYING),
    (State.PLAYING, State.PLAYING, Input.PAUSE, State.PAUSED),
    (State.PLAYING, State.PLAYING, Input.FORWARD, State.PLAYING),
    (State.PLAYING, State.PLAYING, Input.CONTROLS, State.CONTROLS),
    (State.PLAYING, State.PLAYING, Input.OTHER_KEY, State.PLAYING),
    (State.PLAYING, State.PLAYING, Input.RECORDING_DONE, State.CLOSING),
    (State.PAUSED, State.PLAYING, Input.BACK, State.PAUSED),
    (State.PAUSED, State.PLAYING, Input.PAUSE, State.PLAYING),
    (State.PAUSED, State.PLAYING, Input.FORWARD, State.PAUSED),
    (State.PAUSED, State.PLAYING, Input.CONTROLS, State.CONTROLS),
    (State.PAUSED, State.PLAYING, Input.OTHER_KEY, State.PAUSED),
    (State.PAUSED, State.PLAYING, Input.PROMPT_DONE, State.PAUSED),
    (State.PAUSED, State.PLAYING, Input.PAUSE_TIMEOUT, State.CLOSING),
    (State.CONTROLS, State.PLAYING, Input.BACK, State.PLAYING),
    (State.CONTROLS, State.PLAYING, Input.PAUSE, State.PAUSED),
    (State.CONTROLS, State.PLAYING, Input.FORWARD, State.PLAYING),
    (State.CONTROLS, State.PLAYING, Input.CONTROLS, State.CONTROLS),
    (State.CONTROLS, State.PLAYING, Input.OTHER_KEY, State.CONTROLS),
    (State.CONTROLS, State.PLAYING, Input.PROMPT_DONE, State.PLAYING),
    (State.CONTROLS, State.PAUSED, Input.BACK, State.PAUSED),
    (State.CONTROLS, State.PAUSED, Input.PAUSE, State.PLAYING),
    (State.CONTROLS, State.PAUSED, Input.FORWARD, State.PAUSED),
    (State.CONTROLS, State.PAUSED, Input.CONTROLS, State.CONTROLS),
    (State.CONTROLS, State.PAUSED, Input.OTHER_KEY, State.CONTROLS),
    (State.CONTROLS, State.PAUSED, Input.PROMPT_DONE, State.PAUSED),
    *[
        (State.CLOSING, State.PLAYING, key, State.CLOSING)
        for key in (*KEYPAD.values(), Input.OTHER_KEY)
    ],
    (State.CLOSING, State.PLAYING, Input.PROMPT_DONE, State.DONE),
    *[(State.DONE, State.PLAYING, key, State.DONE) for key in (*KEYPAD.values(), Input.OTHER_KEY)],
]


@pytest.mark.parametrize(("state", "resume_to", "event", "target"), EXPECTED)
def test_every_transition(state: State, resume_to: State, event: Input, target: State) -> None:
    p = in_state(state, resume_to)
    p._handle(event, 0.0)
    assert p.state is target
    assert target in TRANSITIONS[state][event]


def test_the_expected_transitions_cover_the_table() -> None:
    assert {(state, event) for state, _, event, _ in EXPECTED} == {
        (state, event) for state, row in TRANSITIONS.items() for event in row
    }


@pytest.mark.parametrize("state", list(State))
def test_every_key_is_listed_in_every_state(state: State) -> None:
    assert set(KEYPAD.values()) | {Input.OTHER_KEY} <= set(TRANSITIONS[state])


@pytest.mark.parametrize(
    ("state", "event"),
    [(state, event) for state in State for event in Input if event not in TRANSITIONS[state]],
)
def test_an_input_the_table_does_not_list_raises(state: State, event: Input) -> None:
    p = in_state(state)
    with pytest.raises(ReplayTransitionError, match=f"{event.name} is not expected in"):
        p._handle(event, 0.0)
    assert p.state is state


# -- any keys, any time ---------------------------------------------------------------------------

Step = tuple[str, str | int]
STEPS = st.one_of(
    st.tuples(st.just("key"), st.sampled_from(EVENT_DIGITS)),
    st.tuples(st.just("ticks"), st.integers(min_value=1, max_value=120)),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=400)),
)


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(min_value=0, max_value=seconds(6)),
    intro=st.booleans(),
    steps=st.lists(STEPS, max_size=80),
)
def test_any_keys_keep_the_position_in_the_recording_and_the_state_legal(
    length: int, intro: bool, steps: list[Step]
) -> None:
    rules = ReplayRules(
        skip_s=1.0,
        pause_timeout_s=60.0,
        intro=PromptName.REPLAY_WELCOME if intro else None,
    )
    p = ReplayPlayback(recording(length), FakePrompts(), rules)
    now = 0.0
    hangups: list[Hangup] = []
    for kind, value in steps:
        before = p.state
        if kind == "key":
            assert isinstance(value, str)
            p.press(value, now)
        elif kind == "ticks":
            assert isinstance(value, int)
            for _ in range(value):
                frame = p.next_frame(now)
                assert frame.shape == (PHONE_FRAME_SAMPLES,) and frame.dtype == np.int16
                now += 0.02
        else:
            assert isinstance(value, int)
            now += value
        assert 0 <= p.position <= p.length
        assert isinstance(p.state, State)
        if before is State.DONE:
            assert p.state is State.DONE
        for action in drain(p):
            assert isinstance(action, Hangup | PromptStarted | Seeked | Paused | Resumed)
            if isinstance(action, Seeked):
                assert 0 <= action.position_s <= length / PHONE_RATE
            if isinstance(action, Hangup):
                hangups.append(action)
        assert len(hangups) == (1 if p.state is State.DONE else 0)
        # A pause deadline exists exactly while paused.
        assert (p.get_timer() is not None) == (p.state is State.PAUSED)
