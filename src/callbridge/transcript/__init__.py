"""Offline transcripts of recorded calls: speech engines, captions, search and word error rate."""

from callbridge.transcript.engine import (
    EngineUnavailable,
    Segment,
    SpeechEngine,
    available_engines,
    get_engine,
)
from callbridge.transcript.transcribe import (
    Hit,
    Transcript,
    TranscriptError,
    TranscriptSegment,
    load_transcript,
    search,
    transcribe_recording,
)

__all__ = [
    "EngineUnavailable",
    "Hit",
    "Segment",
    "SpeechEngine",
    "Transcript",
    "TranscriptError",
    "TranscriptSegment",
    "available_engines",
    "get_engine",
    "load_transcript",
    "search",
    "transcribe_recording",
]
