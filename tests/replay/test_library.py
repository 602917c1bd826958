"""The replay library against real recording folders: a call split by a crash, file modes,
and the transcription child's database URL."""

from __future__ import annotations

import os
import stat
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from callbridge.bridge.service import Bridge, BridgeConfig
from callbridge.events.schema import EventFile
from callbridge.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from callbridge.media.recording import CallRecorder, assemble
from callbridge.replay import library
from callbridge.store import layout
from callbridge.store.calllog import CallLog
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from callbridge.web.media import WebcastMedia
from callbridge.webcast import vod
from tests.conftest import example_data
from tests.support.baresip import tone_power

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _tone(frequency: float, frame: int) -> np.ndarray:
    t = (np.arange(FRAME_SAMPLES) + frame * FRAME_SAMPLES) / SAMPLE_RATE
    return (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def _record(directory: Path, event_id: int, frequency: float, seconds: float) -> None:
    """A real recording folder: chunks written by CallRecorder, then assembled."""
    with CallRecorder(directory, event_id, chunk_seconds=1.0) as recorder:
        for frame in range(round(seconds * 50)):
            recorder.write_mix(frame, _tone(frequency, frame))
    assemble(directory)


def _samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def test_a_call_split_by_a_crash_replays_every_folder_in_order(tmp_path: Path) -> None:
    recordings = layout.recordings(tmp_path / "var")
    folder = layout.event_folder(recordings, 7)
    # Before the crash (600 Hz), after the restart (900 Hz); another event beside them.
    _record(folder / "20261105T213000Z", 7, 600, 3.0)
    _record(folder / "20261105T213412Z", 7, 900, 2.0)
    _record(layout.event_folder(recordings, 8) / "20261105T213000Z", 8, 300, 1.0)

    newest = folder / "20261105T213412Z"
    assert library.call_parts(newest) == [folder / "20261105T213000Z", newest]
    assert library.call_parts(folder / "20261105T213000Z") == [folder / "20261105T213000Z"]
    result = library.package(newest)

    joined = _samples(newest / library.JOINED_WAV)
    assert len(joined) == 5 * SAMPLE_RATE
    first, second = joined[: 3 * SAMPLE_RATE], joined[3 * SAMPLE_RATE :]
    assert tone_power(first, SAMPLE_RATE, 600) > 0.9
    assert tone_power(second, SAMPLE_RATE, 900) > 0.9
    assert result.duration == pytest.approx(5.0, abs=0.2)  # the replay holds both parts
    assert library.replay_audio(newest) == newest / library.JOINED_WAV
    found = WebcastMedia(tmp_path / "var").replay(7)
    assert found is not None and found.directory == newest
    assert found.m4a == newest / library.JOINED_M4A
    assert found.m4a.stat().st_size > 0
    # An event recorded once keeps its own files.
    single = layout.event_folder(recordings, 8) / "20261105T213000Z"
    assert library.package(single).duration == pytest.approx(1.0, abs=0.2)
    assert not (single / library.JOINED_WAV).exists()
    assert library.replay_audio(single) == single / "recording.wav"
    assert WebcastMedia(tmp_path / "var").replay(8).m4a == single / "recording.m4a"  # type: ignore[union-attr]


def test_a_folder_being_recorded_after_the_call_is_not_part_of_it(tmp_path: Path) -> None:
    folder = layout.event_folder(layout.recordings(tmp_path), 7)
    _record(folder / "20261105T213000Z", 7, 600, 1.0)
    _record(folder / "20261105T220000Z", 7, 900, 1.0)
    (folder / "20261105T230000Z").mkdir()  # unassembled: skipped
    parts = library.call_parts(folder / "20261105T220000Z")
    assert [p.name for p in parts] == ["20261105T213000Z", "20261105T220000Z"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_recordings_and_replays_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: the modes must not rely on serve's
    try:
        recordings = layout.recordings(tmp_path / "var")
        folder = layout.event_folder(recordings, 7)
        _record(folder / "20261105T213000Z", 7, 600, 1.0)
        _record(folder / "20261105T213412Z", 7, 900, 1.0)
        library.package(folder / "20261105T213412Z")
        library.write_progress(folder / "20261105T213412Z", library.Progress("done", 1.0))
    finally:
        os.umask(old)
    for path in [tmp_path / "var", recordings, *recordings.rglob("*")]:
        # hls/ is made by webcast.vod, inside a 0700 folder; its files are 0600 below.
        if path.is_dir() and path.name != library.REPLAY_DIR:
            assert _mode(path) == 0o700, path
        elif path.is_file():
            assert _mode(path) == 0o600, path


def test_the_transcription_child_gets_the_database_url_from_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A URL that could carry a password: it must not be on the child's command line.
    url = f"sqlite:///{tmp_path / 'secret-s3cr3t.sqlite3'}"
    database = Database(url)
    database.upgrade()
    event = EventStore(database).create(EventFile.model_validate(example_data()))
    database.dispose()
    monkeypatch.delenv("CALLBRIDGE_DB", raising=False)
    command = library.transcribe_command(url, tmp_path / "var", event.id)
    assert not any("s3cr3t" in part or "sqlite" in part for part in command), command
    assert "--db" not in command
    assert os.environ["CALLBRIDGE_DB"] == url
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=elsewhere)
    # It found the event in that database (the default, ./var under its cwd, has none) and
    # stopped at the missing recording.
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"callbridge: event {event.id} has no assembled recording"), last


def test_vod_marker_names_the_joined_source(tmp_path: Path) -> None:
    folder = layout.event_folder(layout.recordings(tmp_path), 7)
    _record(folder / "20261105T213000Z", 7, 600, 1.0)
    _record(folder / "20261105T213412Z", 7, 900, 1.0)
    library.package(folder / "20261105T213412Z")
    marker = (folder / "20261105T213412Z" / library.REPLAY_DIR / vod.MARKER).read_text()
    assert f'"source": "{library.JOINED_M4A}"' in marker


def test_the_phone_replay_plays_the_whole_split_call(tmp_path: Path) -> None:
    recordings = layout.recordings(tmp_path)
    folder = layout.event_folder(recordings, 7)
    _record(folder / "20261105T213000Z", 7, 600, 1.0)
    _record(folder / "20261105T213412Z", 7, 900, 1.0)
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    database.upgrade()
    bridge = Bridge(BridgeConfig(recordings=recordings), EventStore(database), CallLog(database))
    found = bridge.replay_recording(7)
    assert found is not None and found[0] == folder / "20261105T213412Z" / "recording.wav"
    library.package(folder / "20261105T213412Z")
    found = bridge.replay_recording(7)
    assert found is not None and found[0] == folder / "20261105T213412Z" / library.JOINED_WAV
    database.dispose()


def test_transcripts_cut_short_are_found_again_and_failed_ones_are_left(tmp_path: Path) -> None:
    recordings = layout.recordings(tmp_path / "var")
    states = {7: "running", 8: "done", 9: "failed", 10: None}
    for event_id, state in states.items():
        directory = layout.event_folder(recordings, event_id) / "20261105T213000Z"
        _record(directory, event_id, 600, 1.0)
        library.package(directory)
        if state is not None:
            library.write_progress(directory, library.Progress(state, 0.5))
    unpackaged = layout.event_folder(recordings, 11) / "20261105T213000Z"
    _record(unpackaged, 11, 600, 1.0)  # packaged first, by the other pass

    found = library.untranscribed(recordings)
    # 7 was killed while running, 10 before it wrote any progress.
    assert set(found) == {layout.event_folder(recordings, n) / "20261105T213000Z" for n in (7, 10)}
