"""The passcode IVR of one call, as an explicit state machine.

The machine is pure: the glue feeds it inputs (the call was answered, a
prompt finished, a key was pressed, a timer fired, the store answered a
lookup) with the time, and carries out the actions it queues (play or stop
a prompt, look a passcode up, join the conference, hang up). Which state may
follow which on which input is the table ``TRANSITIONS``; anything it does
not list raises ``IvrTransitionError``.

When a code is complete. Passcodes are 4 to 12 digits (``events/schema.py``)
and one dial-in number may carry codes of several lengths (a 7-digit
listener code, a 10-digit speaker code, another event's 4-digit replay code).
Collection ends on whichever comes first:

- ``#``;
- the longest code length in use on the number dialled (``CodeLengths``,
  fed once the store has answered): no longer code could match, and with
  one length in use this is simply "the code's length";
- the inter-digit timeout (a shorter code keyed without ``#``);
- ``max_digits`` (the schema's longest code) before the lengths are known.

The machine is told lengths only, never codes: ending a code early because
no code starts with the digits so far would tell a guesser about prefixes.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from callbridge.events.schema import MAX_PASSCODE_DIGITS
from callbridge.media.prompts import PromptName


class State(enum.Enum):
    IDLE = "idle"
    PROMPTING = "prompting"  # a prompt the caller may key over
    COLLECTING = "collecting"
    LOOKING_UP = "looking_up"
    FAREWELL = "farewell"  # a goodbye prompt, then hang up
    DONE = "done"


# -- inputs -------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    now: float


@dataclass(frozen=True)
class PromptFinished:
    now: float


@dataclass(frozen=True)
class Digit:
    digit: str
    now: float


@dataclass(frozen=True)
class TimerFired:
    now: float


@dataclass(frozen=True)
class CodeLengths:
    """The lengths of the codes that open something on the number dialled."""

    lengths: frozenset[int]
    now: float


class Outcome(enum.Enum):
    JOINED = "joined"
    INVALID = "invalid"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    BLOCKED = "blocked"
    LOCKED = "locked"
    EXPIRED = "expired"  # a replay code after the replay window
    REPLAY_NOT_YET = "replay_not_yet"  # a replay code before the recording is ready
    PIN_IN_USE = "pin_in_use"  # a personal PIN whose registrant is on the call already
    REGISTRATION_REQUIRED = "registration_required"  # the public code, where PINs only


@dataclass(frozen=True)
class LookupResult:
    outcome: Outcome
    now: float
    event_id: int | None = None
    role: str | None = None  # "speaker", "listener", "registrant" or "replay"
    hold: bool = False  # joined before the host started the call


Input = Answered | PromptFinished | Digit | TimerFired | LookupResult | CodeLengths

# -- actions ------------------------------------------------------------------


@dataclass(frozen=True)
class PlayPrompt:
    prompt: PromptName
    barge_in: bool


@dataclass(frozen=True)
class StopPrompt:
    pass


@dataclass(frozen=True)
class LookupPasscode:
    passcode: str


@dataclass(frozen=True)
class Join:
    event_id: int
    role: str
    hold: bool


@dataclass(frozen=True)
class Hangup:
    reason: str


Action = PlayPrompt | StopPrompt | LookupPasscode | Join | Hangup


class IvrTransitionError(Exception):
    """An input the machine does not expect in its present state."""


@dataclass(frozen=True)
class IvrRules:
    max_digits: int = MAX_PASSCODE_DIGITS
    max_tries: int = 3
    first_digit_timeout: float = 10.0
    inter_digit_timeout: float = 5.0
    terminator: str = "#"


# state → input type → the states the handler may move to.
TRANSITIONS: dict[State, dict[type, frozenset[State]]] = {
    State.IDLE: {Answered: frozenset({State.PROMPTING}), CodeLengths: frozenset({State.IDLE})},
    State.PROMPTING: {
        PromptFinished: frozenset({State.COLLECTING}),
        CodeLengths: frozenset({State.PROMPTING}),
        # '#' with nothing keyed counts as a try: back to a prompt, or goodbye.
        Digit: frozenset({State.COLLECTING, State.LOOKING_UP, State.PROMPTING, State.FAREWELL}),
    },
    State.COLLECTING: {
        # The lengths may arrive after the caller keyed a whole code.
        CodeLengths: frozenset({State.COLLECTING, State.LOOKING_UP}),
        Digit: frozenset({State.COLLECTING, State.LOOKING_UP, State.PROMPTING, State.FAREWELL}),
        TimerFired: frozenset(
            {State.COLLECTING, State.LOOKING_UP, State.PROMPTING, State.FAREWELL}
        ),
    },
    State.LOOKING_UP: {
        LookupResult: frozenset({State.DONE, State.PROMPTING, State.FAREWELL}),
        Digit: frozenset({State.LOOKING_UP}),
        CodeLengths: frozenset({State.LOOKING_UP}),
    },
    State.FAREWELL: {
        PromptFinished: frozenset({State.DONE}),
        Digit: frozenset({State.FAREWELL}),
        CodeLengths: frozenset({State.FAREWELL}),
    },
    State.DONE: {
        Digit: frozenset({State.DONE}),
        PromptFinished: frozenset({State.DONE}),
        CodeLengths: frozenset({State.DONE}),
    },
}

_DIGITS = frozenset("0123456789")

_FAREWELLS: dict[Outcome, PromptName] = {
    Outcome.NOT_STARTED: PromptName.NOT_STARTED,
    Outcome.ENDED: PromptName.ENDED,
    Outcome.BLOCKED: PromptName.BLOCKED,
    Outcome.LOCKED: PromptName.LOCKED,
    Outcome.EXPIRED: PromptName.REPLAY_EXPIRED,
    Outcome.REPLAY_NOT_YET: PromptName.REPLAY_NOT_YET,
    Outcome.PIN_IN_USE: PromptName.PIN_IN_USE,
    Outcome.REGISTRATION_REQUIRED: PromptName.REGISTRATION_REQUIRED,
}
_JOINING: dict[str, PromptName] = {
    "speaker": PromptName.JOINING_SPEAKER,
    "listener": PromptName.JOINING_LISTENER,
    "registrant": PromptName.JOINING_LISTENER,
    "replay": PromptName.REPLAY_WELCOME,
}


class IvrSession:
    """One caller's way from answer to the conference (or to a polite goodbye)."""

    def __init__(self, rules: IvrRules = IvrRules()) -> None:
        self.rules = rules
        self.state = State.IDLE
        self.digits = ""
        self.tries = 0
        # The longest code on the number dialled, once known (``CodeLengths``).
        self.longest_code: int | None = None
        # A code ended by its length: a '#' keyed next belongs to it.
        self._pound_expected = False
        self.joined: Join | None = None
        self.hangup_reason: str | None = None
        self._actions: deque[Action] = deque()
        self._timer: float | None = None
        self._handlers: dict[type, Callable[[Input], State]] = {
            Answered: self._on_answered,  # type: ignore[dict-item]
            PromptFinished: self._on_prompt_finished,  # type: ignore[dict-item]
            Digit: self._on_digit,  # type: ignore[dict-item]
            TimerFired: self._on_timer,  # type: ignore[dict-item]
            LookupResult: self._on_lookup,  # type: ignore[dict-item]
            CodeLengths: self._on_code_lengths,  # type: ignore[dict-item]
        }

    # -- the public surface ----------------------------------------------------

    def handle(self, event: Input) -> None:
        """Feed one input; then drain ``next_action`` and re-read ``get_timer``."""
        allowed = TRANSITIONS[self.state].get(type(event))
        if allowed is None:
            raise IvrTransitionError(f"{type(event).__name__} is not expected in {self.state.name}")
        target = self._handlers[type(event)](event)
        if target not in allowed:
            raise IvrTransitionError(f"{self.state.name} cannot move to {target.name}")
        self.state = target

    def next_action(self) -> Action | None:
        return self._actions.popleft() if self._actions else None

    def get_timer(self) -> float | None:
        """When to feed TimerFired, or None."""
        return self._timer

    # -- handlers ---------------------------------------------------------------

    def _play(self, prompt: PromptName, barge_in: bool) -> None:
        self._timer = None
        self._actions.append(PlayPrompt(prompt, barge_in))

    def _on_answered(self, event: Answered) -> State:
        self._play(PromptName.WELCOME, barge_in=True)
        return State.PROMPTING

    def _on_prompt_finished(self, event: PromptFinished) -> State:
        if self.state is State.PROMPTING:
            self._timer = event.now + self.rules.first_digit_timeout
            return State.COLLECTING
        if self.state is State.FAREWELL:
            self._actions.append(Hangup(self.hangup_reason or "goodbye"))
            return State.DONE
        return self.state

    def _on_digit(self, event: Digit) -> State:
        if self.state in (State.LOOKING_UP, State.FAREWELL, State.DONE):
            self._pound_expected = False  # whatever it was, it is spent here
            return self.state  # keys pressed while we talk or look up are ignored
        if self._pound_expected:
            self._pound_expected = False
            if event.digit == self.rules.terminator:
                # The '#' after a code that its length already ended (the
                # release says "followed by #"): not an empty try.
                return self.state
        if self.state is State.PROMPTING:
            self._actions.append(StopPrompt())  # barge-in: the key is the code's first
        if event.digit == self.rules.terminator:
            return self._submit(event.now)
        if event.digit in _DIGITS:  # ASCII only: '²'.isdigit() is True
            self.digits += event.digit
        if len(self.digits) >= self._complete_at():
            self._pound_expected = True
            return self._submit(event.now)
        self._timer = event.now + self.rules.inter_digit_timeout
        return State.COLLECTING

    def _complete_at(self) -> int:
        """How many digits end a code without ``#``: see the module's docstring."""
        if self.longest_code is None:
            return self.rules.max_digits
        return min(self.longest_code, self.rules.max_digits)

    def _on_code_lengths(self, event: CodeLengths) -> State:
        usable = [n for n in event.lengths if 0 < n <= self.rules.max_digits]
        self.longest_code = max(usable) if usable else None
        if (
            self.state is State.COLLECTING
            and self.digits
            and len(self.digits) >= self._complete_at()
        ):
            self._pound_expected = True
            return self._submit(event.now)
        return self.state

    def _on_timer(self, event: TimerFired) -> State:
        if self._timer is None or event.now < self._timer:
            return self.state
        if self.digits:
            # Short codes (a 4-digit replay code) need no '#': silence submits them.
            return self._submit(event.now)
        return self._failed(PromptName.NO_INPUT, "no input")

    def _submit(self, now: float) -> State:
        self._timer = None
        if not self.digits:
            return self._failed(PromptName.NO_INPUT, "no input")
        self._actions.append(LookupPasscode(self.digits))
        return State.LOOKING_UP

    def _failed(self, retry_prompt: PromptName, reason: str) -> State:
        self.tries += 1
        self.digits = ""
        if self.tries >= self.rules.max_tries:
            self.hangup_reason = f"{reason}, {self.tries} tries"
            self._play(PromptName.INVALID_GOODBYE, barge_in=False)
            return State.FAREWELL
        self._play(retry_prompt, barge_in=True)
        return State.PROMPTING

    def _on_lookup(self, event: LookupResult) -> State:
        if event.outcome is Outcome.JOINED:
            if event.event_id is None or event.role not in _JOINING:
                raise IvrTransitionError("a joined lookup needs an event id and a known role")
            # Into the call at once; "you are now joining" is spoken over it.
            self.joined = Join(event.event_id, event.role, event.hold)
            self._actions.append(self.joined)
            self._play(_JOINING[event.role], barge_in=False)
            return State.DONE
        if event.outcome is Outcome.INVALID:
            return self._failed(PromptName.INVALID_RETRY, "invalid passcode")
        self.hangup_reason = event.outcome.value
        self._play(_FAREWELLS[event.outcome], barge_in=False)
        return State.FAREWELL
