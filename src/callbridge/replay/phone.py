"""Replay by phone: one caller listening to a recorded call, with keypad controls.

``ReplayPlayback`` is pure: the bridge asks it for the next 20 ms frame on
every media tick, hands it the keys the caller presses, and carries out the
actions it queues (in practice only ``Hangup``; the rest are for the call
log). Prompts are rendered by the playback itself, into the same frames, so
the bridge never plays anything for a replay leg. Time is the caller's
``now`` (the loop's monotonic clock, as for the IVR).

Keys: ``1`` back and ``3`` forward ``skip_s`` seconds (10), ``2`` pause or
resume, ``0`` the controls prompt, after which the caller is back where they
were, playing or paused. Every other key (``4``-``9``, ``*``, ``#``, ``A``-
``D``) is ignored, silently: a stray ``#`` pressed out of habit should not
interrupt the call with a prompt. Keys during the closing prompt are ignored
too. Going back stops at the start; going forward past the end plays the
closing prompt, then queues ``Hangup``, as the end of the recording does. A
caller who stays paused for ``pause_timeout_s`` (5 minutes) since the pause,
or since their last ``0``, ``1`` or ``3`` while paused, gets the closing
prompt and the hangup; an ignored key does not count.

Which state may follow which on which input is the table ``TRANSITIONS``;
anything it does not list raises ``ReplayTransitionError``.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from callbridge.media.mixer import FRAME_MS, PHONE_FRAME_SAMPLES, PHONE_RATE, SAMPLE_RATE, Pcm
from callbridge.media.prompts import PromptName
from callbridge.rtp.dtmf import EVENT_DIGITS

# Recordings made since the mix is wideband are at its rate; older ones at the phone's.
REPLAY_RATES = (SAMPLE_RATE, PHONE_RATE)
SILENCE: Pcm = np.zeros(PHONE_FRAME_SAMPLES, dtype=np.int16)
SILENCE.flags.writeable = False


class State(enum.Enum):
    INTRO = "intro"  # an opening prompt, the recording at its start
    PLAYING = "playing"
    PAUSED = "paused"  # the pause prompt, if any, then silence
    CONTROLS = "controls"  # the controls prompt, then back to PLAYING or PAUSED
    CLOSING = "closing"  # the closing prompt, then DONE
    DONE = "done"  # Hangup queued; silence from here on


class Input(enum.Enum):
    BACK = "back"  # key 1
    PAUSE = "pause"  # key 2: pause or resume
    FORWARD = "forward"  # key 3
    CONTROLS = "controls"  # key 0
    OTHER_KEY = "other_key"  # any other key: ignored
    PROMPT_DONE = "prompt_done"
    RECORDING_DONE = "recording_done"
    PAUSE_TIMEOUT = "pause_timeout"


KEYPAD: dict[str, Input] = {
    "1": Input.BACK,
    "2": Input.PAUSE,
    "3": Input.FORWARD,
    "0": Input.CONTROLS,
}

_KEYS = (*KEYPAD.values(), Input.OTHER_KEY)


def _ignoring_keys(state: State) -> dict[Input, frozenset[State]]:
    return {key: frozenset({state}) for key in _KEYS}


# state → input → the states it may lead to.
TRANSITIONS: dict[State, dict[Input, frozenset[State]]] = {
    State.INTRO: {
        # A control key cuts the intro short and acts as it would while playing.
        Input.BACK: frozenset({State.PLAYING}),
        Input.PAUSE: frozenset({State.PAUSED}),
        Input.FORWARD: frozenset({State.PLAYING, State.CLOSING}),
        Input.CONTROLS: frozenset({State.CONTROLS}),
        Input.OTHER_KEY: frozenset({State.INTRO}),
        Input.PROMPT_DONE: frozenset({State.PLAYING}),
    },
    State.PLAYING: {
        Input.BACK: frozenset({State.PLAYING}),
        Input.PAUSE: frozenset({State.PAUSED}),
        Input.FORWARD: frozenset({State.PLAYING, State.CLOSING}),
        Input.CONTROLS: frozenset({State.CONTROLS}),
        Input.OTHER_KEY: frozenset({State.PLAYING}),
        Input.RECORDING_DONE: frozenset({State.CLOSING}),
    },
    State.PAUSED: {
        # Seeking while paused moves the position and stays paused.
        Input.BACK: frozenset({State.PAUSED}),
        Input.PAUSE: frozenset({State.PLAYING}),
        Input.FORWARD: frozenset({State.PAUSED, State.CLOSING}),
        Input.CONTROLS: frozenset({State.CONTROLS}),
        Input.OTHER_KEY: frozenset({State.PAUSED}),
        # The pause prompt finishing leaves the caller paused, in silence.
        Input.PROMPT_DONE: frozenset({State.PAUSED}),
        Input.PAUSE_TIMEOUT: frozenset({State.CLOSING}),
    },
    State.CONTROLS: {
        # A control key cuts the prompt short and acts on the state it interrupted.
        Input.BACK: frozenset({State.PLAYING, State.PAUSED}),
        Input.PAUSE: frozenset({State.PLAYING, State.PAUSED}),
        Input.FORWARD: frozenset({State.PLAYING, State.PAUSED, State.CLOSING}),
        Input.CONTROLS: frozenset({State.CONTROLS}),  # from the top
        Input.OTHER_KEY: frozenset({State.CONTROLS}),
        Input.PROMPT_DONE: frozenset({State.PLAYING, State.PAUSED}),
    },
    State.CLOSING: {**_ignoring_keys(State.CLOSING), Input.PROMPT_DONE: frozenset({State.DONE})},
    State.DONE: _ignoring_keys(State.DONE),
}


# -- actions: what the bridge is told -------------------------------------------------------------


class EndReason(enum.StrEnum):
    FINISHED = "replay finished"  # the end of the recording, or forward past it
    PAUSE_TIMEOUT = "paused too long"


@dataclass(frozen=True)
class Hangup:
    """End the call now: the closing prompt has been played out."""

    reason: EndReason


@dataclass(frozen=True)
class PromptStarted:
    """A prompt began; the playback renders it itself. For the log only."""

    prompt: PromptName


@dataclass(frozen=True)
class Seeked:
    """The caller moved to ``position_s`` (clamped to the recording). For the log only."""

    position_s: float


@dataclass(frozen=True)
class Paused:
    position_s: float


@dataclass(frozen=True)
class Resumed:
    position_s: float


ReplayAction = Hangup | PromptStarted | Seeked | Paused | Resumed


class ReplayTransitionError(Exception):
    """An input the playback does not expect in its present state (a bug, not the caller's)."""


class PromptSource(Protocol):
    """Where prompt audio comes from; ``PromptLibrary`` is one."""

    def frames(self, name: PromptName) -> Sequence[Pcm]: ...


@dataclass(frozen=True)
class ReplayRules:
    skip_s: float = 10.0
    pause_timeout_s: float = 5 * 60.0
    intro: PromptName | None = None  # e.g. REPLAY_WELCOME, if the IVR did not play it
    controls: PromptName = PromptName.REPLAY_CONTROLS
    pause_prompt: PromptName | None = PromptName.REPLAY_PAUSED
    closing: PromptName = PromptName.REPLAY_ENDED


class ReplayPlayback:
    """One replay caller: a frame per tick, keys in, actions out.

    Per 20 ms tick call ``next_frame(now)`` and send what it returns (always
    160 samples, silence when nothing plays); after it, and after every
    ``press(digit, now)``, drain ``next_action()``. On ``Hangup`` end the
    call; the playback is then DONE and only returns silence.
    """

    def __init__(
        self,
        recording: Pcm,
        prompts: PromptSource,
        rules: ReplayRules = ReplayRules(),
        rate: int = PHONE_RATE,
    ) -> None:
        """``rate``: the recording's (16 kHz; 8 kHz if made before the mix was wideband)."""
        if recording.ndim != 1:
            raise ValueError("the recording must be one channel of samples")
        self.recording = recording
        self.rate = rate
        self._frame = rate * FRAME_MS // 1000
        self.prompts = prompts
        self.rules = rules
        self.position = 0  # in samples, always within [0, len(recording)]
        self.end_reason: EndReason | None = None
        self._skip = round(rules.skip_s * rate)
        self._prompt: Sequence[Pcm] = ()
        self._prompt_at = 0
        self._resume_to = State.PLAYING  # where CONTROLS returns to
        self._pause_deadline: float | None = None
        self._actions: deque[ReplayAction] = deque()
        self.state = State.PLAYING
        if rules.intro is not None:
            self._play(rules.intro)
            self.state = State.INTRO

    # -- the public surface -----------------------------------------------------------------------

    @property
    def length(self) -> int:
        """The recording's length in samples."""
        return len(self.recording)

    @property
    def position_s(self) -> float:
        return self.position / self.rate

    @property
    def duration_s(self) -> float:
        return self.length / self.rate

    def next_frame(self, now: float) -> Pcm:
        """The next 20 ms to send (160 samples); call once per media tick."""
        self._check_timer(now)
        if self.state is State.PLAYING and self.position >= self.length:
            self._handle(Input.RECORDING_DONE, now)
        if self.state is State.PLAYING:
            return self._recording_frame()
        if self.state is State.DONE:
            return SILENCE
        frame = self._prompt_frame()
        if frame is None:
            self._handle(Input.PROMPT_DONE, now)
            return self.next_frame(now)  # what follows the prompt, from this tick on
        return frame

    def press(self, digit: str, now: float) -> None:
        """A key the caller pressed (one of ``0-9*#A-D``); then drain ``next_action``."""
        if len(digit) != 1 or digit not in EVENT_DIGITS:
            raise ValueError(f"{digit!r} is not a keypad digit")
        self._check_timer(now)  # a key after the deadline comes too late
        self._handle(KEYPAD.get(digit, Input.OTHER_KEY), now)

    def next_action(self) -> ReplayAction | None:
        return self._actions.popleft() if self._actions else None

    def get_timer(self) -> float | None:
        """When a paused caller will be let go (``next_frame`` acts on it), or None."""
        return self._pause_deadline if self.state is State.PAUSED else None

    # -- the machine ------------------------------------------------------------------------------

    def _check_timer(self, now: float) -> None:
        deadline = self.get_timer()
        if deadline is not None and now >= deadline:
            self._handle(Input.PAUSE_TIMEOUT, now)

    def _handle(self, event: Input, now: float) -> None:
        allowed = TRANSITIONS[self.state].get(event)
        if allowed is None:
            raise ReplayTransitionError(f"{event.name} is not expected in {self.state.name}")
        target = self._next_state(event, now)
        if target not in allowed:
            raise ReplayTransitionError(
                f"{self.state.name} cannot move to {target.name} on {event.name}"
            )
        self.state = target

    def _next_state(self, event: Input, now: float) -> State:
        state = self.state
        if state in (State.CLOSING, State.DONE):
            if event is Input.PROMPT_DONE:
                self._actions.append(Hangup(self.end_reason or EndReason.FINISHED))
                return State.DONE
            return state  # keys are ignored while we say goodbye
        if event is Input.OTHER_KEY:
            return state
        if event is Input.RECORDING_DONE:
            return self._close(EndReason.FINISHED)
        if event is Input.PAUSE_TIMEOUT:
            return self._close(EndReason.PAUSE_TIMEOUT)
        if event is Input.PROMPT_DONE:
            if state is State.INTRO:
                return State.PLAYING
            if state is State.CONTROLS:
                return self._back_to(self._resume_to, now)
            return state  # the pause prompt is over; stay paused, in silence
        if event is Input.CONTROLS:
            if state is not State.CONTROLS:
                self._resume_to = State.PAUSED if state is State.PAUSED else State.PLAYING
            self._play(self.rules.controls)
            return State.CONTROLS
        # A control key: INTRO acts as PLAYING, CONTROLS as the state it interrupted.
        underlying = {State.INTRO: State.PLAYING, State.CONTROLS: self._resume_to}.get(state, state)
        if event is Input.PAUSE:
            if underlying is State.PAUSED:
                self._actions.append(Resumed(self.position_s))
                return self._back_to(State.PLAYING, now)
            self._actions.append(Paused(self.position_s))
            return self._pause(now)
        step = -self._skip if event is Input.BACK else self._skip
        self.position = min(max(self.position + step, 0), self.length)
        self._actions.append(Seeked(self.position_s))
        if event is Input.FORWARD and self.position >= self.length:
            return self._close(EndReason.FINISHED)
        # Back, even with nothing to go back over (an empty recording): the tick
        # that finds the position at the end closes, as it always does.
        return self._back_to(underlying, now)

    def _back_to(self, state: State, now: float) -> State:
        """Continue as PLAYING or PAUSED; a caller back to paused has a fresh timeout."""
        self._prompt = ()
        if state is State.PAUSED:
            self._pause_deadline = now + self.rules.pause_timeout_s
        return state

    def _pause(self, now: float) -> State:
        self._prompt = ()
        if self.rules.pause_prompt is not None:
            self._play(self.rules.pause_prompt)
        self._pause_deadline = now + self.rules.pause_timeout_s
        return State.PAUSED

    def _close(self, reason: EndReason) -> State:
        self.end_reason = reason
        self._pause_deadline = None
        self._play(self.rules.closing)
        return State.CLOSING

    def _play(self, prompt: PromptName) -> None:
        self._prompt = self.prompts.frames(prompt)
        self._prompt_at = 0
        self._actions.append(PromptStarted(prompt))

    # -- frames -----------------------------------------------------------------------------------

    def _prompt_frame(self) -> Pcm | None:
        """The current prompt's next frame; SILENCE once a pause prompt is over; None at its end."""
        if self._prompt_at >= len(self._prompt):
            if self.state is State.PAUSED and not self._prompt:
                return SILENCE
            self._prompt = ()
            return None
        frame = self._prompt[self._prompt_at]
        self._prompt_at += 1
        return frame

    def _recording_frame(self) -> Pcm:
        start = self.position
        stop = min(start + self._frame, self.length)
        # A copy: the recording may be a memory map, and a frame outlives the tick.
        frame = np.zeros(self._frame, dtype=np.int16)
        frame[: stop - start] = self.recording[start:stop]
        self.position = stop
        return frame


# -- loading the recording ------------------------------------------------------------------------


class RecordingError(Exception):
    """A recording that cannot be replayed: missing, not a WAV, not 8 kHz mono 16-bit."""


_RIFF = struct.Struct("<4sI4s")
_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")
_PCM = 1
_EXTENSIBLE = 0xFFFE
_MAX_CHUNKS = 64  # chunks read before "data"; ours has two


@dataclass(frozen=True)
class ReplayAudio:
    """A recording to replay by phone: its samples (memory-mapped) and their rate."""

    samples: Pcm
    rate: int


def load_replay(path: Path) -> ReplayAudio:
    """``load_recording``, with the recording's rate (16 kHz, or 8 kHz from before)."""
    try:
        with open(path, "rb") as f:
            _, _, rate = _data_chunk(f, path.name)
    except OSError as exc:
        raise RecordingError(f"{path.name}: {exc.strerror or exc}") from None
    return ReplayAudio(load_recording(path), rate)


def load_recording(path: Path) -> Pcm:
    """The samples of an assembled ``recording.wav``, memory-mapped, read-only.

    Cheap (it reads the header and maps the rest; the pages are read as they
    play), but it touches the disk: run it off the event loop, e.g.
    ``await asyncio.to_thread(load_recording, path)``. The map stays valid
    while the array lives, even if the file is renamed; it must not be
    truncated meanwhile. Raises ``RecordingError``.
    """
    try:
        with open(path, "rb") as f:
            offset, count, _ = _data_chunk(f, path.name)
            size = f.seek(0, 2)
    except OSError as exc:
        raise RecordingError(f"{path.name}: {exc.strerror or exc}") from None
    # A header whose size was never filled in (a crash mid-write) says more than there is.
    count = max(0, min(count, (size - offset) // 2))
    if count == 0:
        return np.zeros(0, dtype=np.int16)
    samples: Pcm = np.memmap(path, dtype="<i2", mode="r", offset=offset, shape=(count,))
    return samples


def _data_chunk(f: BinaryIO, name: str) -> tuple[int, int, int]:
    """(offset, sample count, sample rate) of the data chunk, after checking the format chunk."""
    head = f.read(_RIFF.size)
    if len(head) < _RIFF.size:
        raise RecordingError(f"{name}: {len(head)} bytes, too short for a WAV header")
    riff, _, wave_id = _RIFF.unpack(head)
    if riff != b"RIFF" or wave_id != b"WAVE":
        raise RecordingError(f"{name}: not a RIFF/WAVE file")
    offset = _RIFF.size
    seen_format = False
    rate = 0
    for _ in range(_MAX_CHUNKS):
        header = f.read(_CHUNK.size)
        if len(header) < _CHUNK.size:
            raise RecordingError(f"{name}: no data chunk")
        kind, size = _CHUNK.unpack(header)
        offset += _CHUNK.size
        if kind == b"data":
            if not seen_format:
                raise RecordingError(f"{name}: data chunk before the fmt chunk")
            return offset, size // 2, rate
        body = f.read(size + (size & 1))  # chunks are padded to an even length
        if len(body) < size:
            raise RecordingError(f"{name}: {kind!r} chunk cut short")
        if kind == b"fmt ":
            rate = _check_format(body, name)
            seen_format = True
        offset += size + (size & 1)
    raise RecordingError(f"{name}: no data chunk in the first {_MAX_CHUNKS} chunks")


def _check_format(body: bytes, name: str) -> int:
    if len(body) < _FMT.size:
        raise RecordingError(f"{name}: fmt chunk of {len(body)} bytes, expected {_FMT.size}+")
    tag, channels, rate, _, _, bits = _FMT.unpack_from(body)
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID's first two bytes
    if (tag, channels, bits) != (_PCM, 1, 16) or rate not in REPLAY_RATES:
        raise RecordingError(
            f"{name}: format {tag:#x}, {channels} channel(s), {rate} Hz, {bits} bit; "
            "a replay must be PCM, mono, 16000 or 8000 Hz, 16-bit"
        )
    return int(rate)
