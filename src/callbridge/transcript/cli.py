"""``callbridge transcribe``: transcribe one recording directory with a progress bar."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from callbridge.transcript.engine import EngineUnavailable
from callbridge.transcript.transcribe import (
    CAPTIONS,
    TRANSCRIPT,
    TranscriptError,
    transcribe_recording,
)

BAR_WIDTH = 30


class ProgressBar:
    """A one-line text bar redrawn in place with ``\\r``, at most ten times a second."""

    def __init__(self, stream: TextIO, label: str = "transcribing") -> None:
        self.stream = stream
        self.label = label
        self._last = -1.0
        self._drawn_at = 0.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        now = time.monotonic()
        if fraction < 1.0 and (now - self._drawn_at < 0.1 or fraction == self._last):
            return
        self._last, self._drawn_at = fraction, now
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {fraction * 100:5.1f}%")
        self.stream.flush()

    def close(self) -> None:
        if self._last >= 0:
            self.stream.write("\n")
            self.stream.flush()


def run(directory: Path, engine: str | None, glossary: list[str]) -> int:
    """Transcribe ``directory``; progress on stderr, the files written on stdout.

    Returns the exit status: 0 on success, 1 when there is nothing to
    transcribe or the engine cannot be loaded.
    """
    bar = ProgressBar(sys.stderr)
    try:
        transcript = transcribe_recording(
            Path(directory), engine=engine, glossary=glossary, progress=bar
        )
    except (TranscriptError, EngineUnavailable, OSError) as exc:
        bar.close()
        print(f"callbridge: cannot transcribe {directory}: {exc}", file=sys.stderr)
        return 1
    bar.close()
    speakers = sorted({s.speaker for s in transcript.segments if s.speaker})
    print(
        f"{len(transcript.segments)} segments"
        + (f" from {len(speakers)} speakers" if speakers else "")
        + f", {transcript.duration_s:.0f} s of audio in {transcript.elapsed_s:.1f} s"
        + f" with {transcript.engine} (real-time factor {transcript.real_time_factor:.2f})"
    )
    print(f"transcript: {Path(directory) / TRANSCRIPT}")
    print(f"captions:   {Path(directory) / CAPTIONS}")
    return 0
