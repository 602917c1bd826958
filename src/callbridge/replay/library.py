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
    replay.wav, replay.m4a                  only when a crash split the call (below)

A crash in the middle of a call leaves the call in several recording folders
of the event, one per run of the server (their names are UTC timestamps, so
name order is time order). The replay packaged beside the newest then covers
all of them, oldest first: their audio is joined into ``replay.wav`` and
``replay.m4a``, which the replay, the download and the phone replay use
(``replay_audio``) instead of that folder's own recording.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callbridge.media.recording import encode_aac, load_assembled
from callbridge.store import layout
from callbridge.store.db import ENV_VAR
from callbridge.store.files import open_private, replacing, write_atomic
from callbridge.webcast import vod

log = logging.getLogger(__name__)

REPLAY_DIR = "hls"
PROGRESS = "transcript.progress.json"
TRANSCRIPT = "transcript.json"
# The whole call, when it spans several recording folders.
JOINED_WAV = "replay.wav"
JOINED_M4A = "replay.m4a"


def recording_dirs(recordings: Path, event_id: int) -> list[Path]:
    """The event's recording folders, newest first (their names are UTC timestamps)."""
    folder = layout.event_folder(recordings, event_id)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True)


def newest_assembled(recordings: Path, event_id: int) -> Path | None:
    for directory in recording_dirs(recordings, event_id):
        if load_assembled(directory) is not None:
            return directory
    return None


def call_parts(directory: Path) -> list[Path]:
    """The assembled recordings of the call that ended in ``directory``, oldest first.

    One folder, unless a crash split the call: then the event's earlier
    folders too (the folders newer than ``directory`` are not part of it).
    """
    parts = [
        sibling
        for sibling in sorted(p for p in directory.parent.iterdir() if p.is_dir())
        if sibling.name <= directory.name and load_assembled(sibling) is not None
    ]
    return parts if directory in parts else [directory]


def replay_audio(directory: Path) -> Path:
    """The WAV a replay of the call in ``directory`` plays: the joined call, or its recording."""
    joined = directory / JOINED_WAV
    return joined if joined.is_file() else directory / "recording.wav"


def _join_wavs(parts: list[Path], out: Path) -> None:
    """Write the parts' ``recording.wav`` one after the other as ``out`` (mono PCM at their
    rate: 16 kHz, or 8 kHz for recordings made before the mix was wideband)."""
    with wave.open(str(parts[0] / "recording.wav"), "rb") as first:
        rate = first.getframerate()
    with (
        replacing(out) as tmp,
        os.fdopen(open_private(tmp), "wb") as raw,
        wave.open(raw, "wb") as joined,
    ):
        joined.setnchannels(1)
        joined.setsampwidth(2)
        joined.setframerate(rate)
        for part in parts:
            with wave.open(str(part / "recording.wav"), "rb") as source:
                if (source.getnchannels(), source.getsampwidth(), source.getframerate()) != (
                    1,
                    2,
                    rate,
                ):
                    raise vod.VodError(f"{part} is not {rate} Hz 16-bit mono, as the first part")
                while block := source.readframes(rate * 60):
                    joined.writeframes(block)


def replay_ready(directory: Path) -> bool:
    return (directory / REPLAY_DIR / vod.MARKER).is_file()


def package(directory: Path) -> vod.VodResult:
    """Package an assembled recording's on-demand HLS (blocking; run it in a thread)."""
    assembled = load_assembled(directory)
    if assembled is None:
        raise vod.VodError(f"{directory} is not assembled")
    source = assembled.compressed if assembled.compressed.is_file() else assembled.wav
    started = time.perf_counter()
    parts = call_parts(directory)
    if len(parts) > 1:
        log.warning(
            "the call in %s was split by a restart: its replay joins %s",
            directory,
            ", ".join(part.name for part in parts),
        )
        _join_wavs(parts, directory / JOINED_WAV)
        encode_aac(directory / JOINED_WAV, directory / JOINED_M4A)
        source = directory / JOINED_M4A
    result = vod.package_replay(source, directory / REPLAY_DIR)
    log.info(
        "replay packaged: %.0f s of audio in %.2f s, in %s",
        result.duration,
        time.perf_counter() - started,
        directory / REPLAY_DIR,
    )
    return result


def _recording_folders(recordings: Path) -> list[Path]:
    """Every recording folder under ``recordings``: by event, then in time order."""
    return [
        directory
        for folder in layout.event_folders(recordings)
        for directory in sorted(p for p in folder.iterdir() if p.is_dir())
    ]


def unpackaged(recordings: Path) -> list[Path]:
    """Assembled recordings under ``recordings`` whose replay is not packaged yet."""
    return [
        directory
        for directory in _recording_folders(recordings)
        if load_assembled(directory) is not None and not replay_ready(directory)
    ]


def untranscribed(recordings: Path) -> list[Path]:
    """Packaged replays under ``recordings`` whose transcript never finished.

    Its progress still says "running" (the process that ran it was killed)
    or there is none (killed between packaging and starting it); a transcript
    that failed stays failed, with its reason, rather than failing at every start.
    """
    return [
        directory
        for directory in _recording_folders(recordings)
        if replay_ready(directory)
        and ((progress := read_progress(directory)) is None or progress.state == "running")
    ]


# -- transcript progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    state: str  # "running", "done" or "failed"
    fraction: float
    detail: str = ""


def write_progress(directory: Path, progress: Progress) -> None:
    body = {"state": progress.state, "fraction": round(progress.fraction, 4)}
    if progress.detail:
        body["detail"] = progress.detail
    write_atomic(directory / PROGRESS, json.dumps(body).encode())


def read_progress(directory: Path) -> Progress | None:
    try:
        data: Any = json.loads((directory / PROGRESS).read_text())
        return Progress(str(data["state"]), float(data["fraction"]), str(data.get("detail", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def transcribe_command(database_url: str, data_dir: Path, event_id: int) -> list[str]:
    """The child process that transcribes an event's newest recording, at low priority.

    The database URL may hold a password, and any user can read a process's
    command line (``/proc/PID/cmdline``), so it travels in the environment
    (``/proc/PID/environ`` is the owner's only): this puts it in this
    process's ``CALLBRIDGE_DB``, which the child inherits and reads as its
    default ``--db``. The command itself names no database.
    """
    os.environ[ENV_VAR] = database_url
    command = [
        sys.executable,
        "-m",
        "callbridge",
        "transcribe",
        str(event_id),
        "--data-dir",
        str(data_dir),
    ]
    nice = "/usr/bin/nice"
    return [nice, "-n", "15", *command] if os.path.exists(nice) else command
