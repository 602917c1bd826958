"""Replay: the recorded call by phone after it ends, within the event's replay window."""

from callbridge.replay.phone import (
    EndReason,
    Hangup,
    Paused,
    PromptSource,
    PromptStarted,
    RecordingError,
    ReplayAction,
    ReplayPlayback,
    ReplayRules,
    ReplayTransitionError,
    Resumed,
    Seeked,
    load_recording,
)
from callbridge.replay.window import (
    REFUSAL_PROMPTS,
    ReplayStatus,
    ReplayWindow,
    day_ends,
    replay_window,
    replay_window_of,
)

__all__ = [
    "REFUSAL_PROMPTS",
    "EndReason",
    "Hangup",
    "Paused",
    "PromptSource",
    "PromptStarted",
    "RecordingError",
    "ReplayAction",
    "ReplayPlayback",
    "ReplayRules",
    "ReplayStatus",
    "ReplayTransitionError",
    "ReplayWindow",
    "Resumed",
    "Seeked",
    "day_ends",
    "load_recording",
    "replay_window",
    "replay_window_of",
]
