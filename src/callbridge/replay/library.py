"""The replay library: from an assembled recording to what listeners play afterwards.

After a call its recording folder (``media.recording``) is assembled; this
module then packages the on-demand HLS replay beside it (``hls/``, by
``webcast.vod``) and runs the transcript (``transcript``) in a child process
at low priority, so a long transcription never competes with live calls for
the event loop. The transcript's progress is a small JSON file the console
polls.

A recording folder, after all of it::

    recording.wav, recording.m4a, stems/…   (media.recording)
    hls/index.m3u8, hls/packaged.json       the replay, by web
    transcript.json, captions.vtt           the transcript
    transcript.progress.json                {"fraction": 0..1, "state": "running"|"done"|"failed"}
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callbridge.media.recording import load_assembled
from callbridge.webcast import vod

log = logging.getLogger(__name__)

REPLAY_DIR = "hls"
PROGRESS = "transcript.progress.json"
TRANSCRIPT = "transcript.json"


def event_folder(recordings: Path, event_id: int) -> Path:
    return recordings / f"event-{event_id}"


def recording_dirs(recordings: Path, event_id: int) -> list[Path]:
    """The event's recording folders, newest first (their names are UTC timestamps)."""
    folder = event_folder(recordings, event_id)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True)


def newest_assembled(recordings: Path, event_id: int) -> Path | None:
    for directory in recording_dirs(recordings, event_id):
        if load_assembled(directory) is not None:
            return directory
    return None


def replay_ready(directory: Path) -> bool:
    return (directory / REPLAY_DIR / vod.MARKER).is_file()


def package(directory: Path) -> vod.VodResult:
    """Package an assembled recording's on-demand HLS (blocking; run it in a thread)."""
    assembled = load_assembled(directory)
    if assembled is None:
        raise vod.VodError(f"{directory} is not assembled")
    source = assembled.compressed if assembled.compressed.is_file() else assembled.wav
    started = time.perf_counter()
    result = vod.package_replay(source, directory / REPLAY_DIR)
    log.info(
        "replay packaged: %.0f s of audio in %.2f s, in %s",
        result.duration,
        time.perf_counter() - started,
        directory / REPLAY_DIR,
    )
    return result


def unpackaged(recordings: Path) -> list[Path]:
    """Assembled recordings under ``recordings`` whose replay is not packaged yet."""
    found: list[Path] = []
    if not recordings.is_dir():
        return found
    for folder in sorted(recordings.glob("event-*")):
        for directory in sorted(p for p in folder.iterdir() if p.is_dir()):
            if load_assembled(directory) is not None and not replay_ready(directory):
                found.append(directory)
    return found


# -- transcript progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    state: str  # "running", "done" or "failed"
    fraction: float
    detail: str = ""


def write_progress(directory: Path, progress: Progress) -> None:
    path = directory / PROGRESS
    temporary = directory / f".{PROGRESS}.tmp"
    body = {"state": progress.state, "fraction": round(progress.fraction, 4)}
    if progress.detail:
        body["detail"] = progress.detail
    temporary.write_text(json.dumps(body))
    os.replace(temporary, path)


def read_progress(directory: Path) -> Progress | None:
    try:
        data: Any = json.loads((directory / PROGRESS).read_text())
        return Progress(str(data["state"]), float(data["fraction"]), str(data.get("detail", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def transcribe_command(database_url: str, data_dir: Path, event_id: int) -> list[str]:
    """The child process that transcribes an event's newest recording, at low priority."""
    command = [
        sys.executable,
        "-m",
        "callbridge",
        "--db",
        database_url,
        "transcribe",
        str(event_id),
        "--data-dir",
        str(data_dir),
    ]
    nice = "/usr/bin/nice"
    return [nice, "-n", "15", *command] if os.path.exists(nice) else command
