"""Recorded prompts: what the IVR and the bridge say, as 20 ms frames of 8 kHz audio.

The WAV files under ``media/prompts/`` are made by ``scripts/make_prompts.py``
(espeak-ng, then sox to 8 kHz mono 16-bit) and shipped with the package.
"""

from __future__ import annotations

import enum
import wave
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callbridge.media.mixer import PHONE_FRAME_SAMPLES, PHONE_RATE

Pcm = npt.NDArray[np.int16]
PROMPT_DIR = Path(__file__).parent / "prompts"


class PromptName(enum.StrEnum):
    WELCOME = "welcome"
    INVALID_RETRY = "invalid_retry"
    INVALID_GOODBYE = "invalid_goodbye"
    NO_INPUT = "no_input"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    BLOCKED = "blocked"
    JOINING_LISTENER = "joining_listener"
    JOINING_SPEAKER = "joining_speaker"
    HOLD = "hold"
    LOCKED = "locked"
    QUESTION_QUEUED = "question_queued"
    QUESTION_WITHDRAWN = "question_withdrawn"
    LINE_OPEN = "line_open"
    LINE_CLOSED = "line_closed"
    MUTED = "muted"
    UNMUTED = "unmuted"
    CONFERENCE_ENDING = "conference_ending"
    REPLAY_WELCOME = "replay_welcome"
    REPLAY_CONTROLS = "replay_controls"
    REPLAY_EXPIRED = "replay_expired"
    REPLAY_NOT_YET = "replay_not_yet"
    REPLAY_PAUSED = "replay_paused"
    REPLAY_ENDED = "replay_ended"
    PIN_IN_USE = "pin_in_use"
    REGISTRATION_REQUIRED = "registration_required"
    HOLD_MUSIC = "hold_music"
    PRESS_ONE = "press_one"


# What each prompt says; scripts/make_prompts.py speaks these.
PROMPT_TEXT: dict[PromptName, str] = {
    PromptName.WELCOME: "Welcome to the conference call service. "
    "Please enter your passcode, followed by the pound key.",
    PromptName.INVALID_RETRY: "That code is not valid. Please try again.",
    PromptName.INVALID_GOODBYE: "That code is not valid. Goodbye.",
    PromptName.NO_INPUT: "We did not receive your code. Please try again.",
    PromptName.NOT_STARTED: "This conference has not started yet. "
    "Please call back closer to the scheduled start time. Goodbye.",
    PromptName.ENDED: "This conference has ended. Thank you for calling. Goodbye.",
    PromptName.BLOCKED: "Too many attempts. Goodbye.",
    PromptName.PRESS_ONE: "This is the conference call service. You are invited to join "
    "the call. Press 1 to join.",
    PromptName.JOINING_LISTENER: "You are now joining the conference in listen only mode.",
    PromptName.JOINING_SPEAKER: "You are now joining the conference as a speaker.",
    PromptName.HOLD: "Please hold. The conference will begin shortly.",
    PromptName.LOCKED: "This conference is locked. Goodbye.",
    PromptName.QUESTION_QUEUED: "You have been placed in the question queue.",
    PromptName.QUESTION_WITHDRAWN: "You have withdrawn your question.",
    PromptName.LINE_OPEN: "Your line is now open.",
    PromptName.LINE_CLOSED: "Your line has been closed.",
    PromptName.MUTED: "You are muted.",
    PromptName.UNMUTED: "You are unmuted.",
    PromptName.CONFERENCE_ENDING: "The conference has now ended. "
    "Thank you for participating. Goodbye.",
    PromptName.REPLAY_WELCOME: "Welcome to the replay. Press zero at any time for the controls.",
    PromptName.REPLAY_CONTROLS: "Press one to go back ten seconds, three to go forward "
    "ten seconds, two to pause or resume.",
    PromptName.REPLAY_EXPIRED: "This replay is no longer available. Goodbye.",
    PromptName.REPLAY_NOT_YET: "The replay of this call is not available yet. "
    "Please call back later. Goodbye.",
    PromptName.REPLAY_PAUSED: "The replay is paused. Press two to resume.",
    PromptName.REPLAY_ENDED: "This concludes the replay. Thank you for listening. Goodbye.",
    PromptName.PIN_IN_USE: "This personal PIN is already connected to the call. Goodbye.",
    PromptName.REGISTRATION_REQUIRED: "This call is open to registered participants only. "
    "Please register on the webcast page for your personal PIN. Goodbye.",
}


class PromptError(Exception):
    """A prompt file that is missing or not 8 kHz mono 16-bit."""


def load_wav(path: Path) -> Pcm:
    """Read an 8 kHz mono 16-bit WAV as int16 samples."""
    try:
        with wave.open(str(path), "rb") as wav:
            if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (PHONE_RATE, 1, 2):
                raise PromptError(
                    f"{path.name}: {wav.getframerate()} Hz, {wav.getnchannels()} channel(s), "
                    f"{8 * wav.getsampwidth()} bit; prompts must be 8000 Hz mono 16-bit"
                )
            return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
    except (FileNotFoundError, wave.Error) as exc:
        raise PromptError(f"{path.name}: {exc}") from None


def to_frames(samples: Pcm) -> list[Pcm]:
    """Cut into 160-sample frames, padding the last with silence."""
    count = -(-len(samples) // PHONE_FRAME_SAMPLES)
    padded = np.zeros(count * PHONE_FRAME_SAMPLES, dtype=np.int16)
    padded[: len(samples)] = samples
    frames = [padded[i * PHONE_FRAME_SAMPLES : (i + 1) * PHONE_FRAME_SAMPLES] for i in range(count)]
    for frame in frames:
        frame.flags.writeable = False
    return frames


class PromptLibrary:
    """Every prompt, loaded once and cut into frames."""

    def __init__(self, directory: Path = PROMPT_DIR) -> None:
        self.directory = directory
        self._frames: dict[PromptName, list[Pcm]] = {}

    def frames(self, name: PromptName) -> Sequence[Pcm]:
        if name not in self._frames:
            self._frames[name] = to_frames(load_wav(self.directory / f"{name.value}.wav"))
        return self._frames[name]

    def duration(self, name: PromptName) -> float:
        return len(self.frames(name)) * PHONE_FRAME_SAMPLES / PHONE_RATE

    def loop(self, name: PromptName) -> Iterator[Pcm]:
        """The prompt's frames once through (a caller re-starts it to loop)."""
        return iter(self.frames(name))


@cache
def default_library() -> PromptLibrary:
    return PromptLibrary()


class PromptPlayer:
    """Plays one prompt at a time into one leg, a frame per tick."""

    def __init__(self, library: PromptLibrary) -> None:
        self.library = library
        self.current: PromptName | None = None
        self.barge_in = False
        self.loop = False
        self._position = 0

    def start(self, name: PromptName, barge_in: bool = False, loop: bool = False) -> None:
        self.current = name
        self.barge_in = barge_in
        self.loop = loop
        self._position = 0

    def stop(self) -> None:
        self.current = None

    @property
    def playing(self) -> bool:
        return self.current is not None

    def next_frame(self) -> Pcm | None:
        """The next 20 ms, or None when nothing plays; a finished prompt stops itself."""
        if self.current is None:
            return None
        frames = self.library.frames(self.current)
        if self._position >= len(frames):
            if not self.loop:
                self.current = None
                return None
            self._position = 0
        frame = frames[self._position]
        self._position += 1
        return frame
