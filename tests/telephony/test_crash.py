"""SIGKILL in the middle of a call: the recording up to the last seconds survives, and the
replay covers the call before and after the crash."""

from __future__ import annotations

import json
import signal
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from callbridge.replay import library
from callbridge.store import layout
from callbridge.webcast import vod
from tests.support.baresip import read_wav, tone_power
from tests.support.pcap import passcode_stream
from tests.support.sipp import Dialing, call_in
from tests.telephony.conftest import RunningServer, need, start_server

pytestmark = pytest.mark.sipp


def test_recording_survives_sigkill_and_is_assembled_on_restart(tmp_path: Path) -> None:
    need("sipp")
    home = tmp_path / "server"
    home.mkdir()
    with start_server(home) as server:
        event = server.create_event()
        assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
        t = np.arange(160) / 8000
        tone = (8000 * np.sin(2 * np.pi * 600 * t)).astype(np.int16)
        sipp = Dialing(
            server.sip_target,
            tmp_path,
            passcode_stream([event.speaker_passcode], tone=tone, talk_after=14),
            name="speaker",
            stay_ms=13000,
            timeout=18,
        )
        server.wait_for(lambda: server.participants(event.id), timeout=15)
        joined = time.monotonic()
        time.sleep(9.0)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        killed_after = time.monotonic() - joined
        folder = layout.event_recordings(server.data_dir, event.id)
        assert list(folder.glob("*/mix/*.chunk")), "nothing was on disk at the crash"
        assert not list(folder.glob("*/assembled.json"))

    # (The orphaned sipp call retries its BYE meanwhile: the new server answers 481.)
    with start_server(home) as restarted:
        done = restarted.wait_for(lambda: list(folder.glob("*/assembled.json")), timeout=20)
        heard, rate = read_wav(done[0].parent / "recording.wav")
        seconds = len(heard) / rate
        # Chunks are 2 s; at most the last one in flight is lost.
        assert seconds >= killed_after - 3.0, (seconds, killed_after)
        assert tone_power(heard[-2 * rate :], rate, 600) > 0.5
        assert "recovered the recording" in restarted.log()
    sipp.result(timeout=60)  # its call died with the server: sipp's verdict says nothing


def _speak(tmp_path: Path, server: RunningServer, code: str, hz: float, seconds: int) -> bool:
    """A sipp speaker keys ``code`` and sends a tone for ``seconds``; whether sipp was content."""
    t = np.arange(160) / 8000
    tone = (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    called = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([code], tone=tone, talk_after=seconds + 1),
        name=f"speaker-{hz:.0f}",
        stay_ms=seconds * 1000,
        timeout=seconds + 10,
    )
    return bool(called.ok)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_after_a_crash_the_replay_covers_the_whole_call_and_files_stay_private(
    tmp_path: Path,
) -> None:
    """Killed mid-call, restarted, the call goes on and ends: the replay holds both halves.

    Every file the server wrote (database, recordings, webcast, replay) is its user's only.
    """
    need("sipp")
    home = tmp_path / "server"
    home.mkdir()
    with start_server(home) as server:
        event = server.create_event()
        assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
        before = threading.Thread(
            target=_speak, args=(tmp_path, server, event.speaker_passcode, 600, 12)
        )
        before.start()
        server.wait_for(lambda: server.participants(event.id), timeout=15)
        time.sleep(7.0)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    folder = layout.event_recordings(server.data_dir, event.id)

    with start_server(home) as restarted:
        restarted.wait_for(lambda: list(folder.glob("*/assembled.json")), timeout=20)
        # The second half: the speaker calls back into the restarted server's call (a
        # media plane still starting on a busy machine may miss the first try).
        if not _speak(tmp_path, restarted, event.speaker_passcode, 900, 5):
            assert _speak(tmp_path, restarted, event.speaker_passcode, 900, 5), restarted.log()
        restarted.wait_for(lambda: len([p for p in folder.iterdir() if p.is_dir()]) == 2)
        assert restarted.api("POST", f"/api/events/{event.id}/end").status_code == 200
        parts = sorted(p for p in folder.iterdir() if p.is_dir())
        assert len(parts) == 2, parts
        packaged = parts[-1] / library.REPLAY_DIR / vod.MARKER
        restarted.wait_for(packaged.is_file, timeout=30)
        joined, rate = read_wav(parts[-1] / library.JOINED_WAV)
        first, _ = read_wav(parts[0] / "recording.wav")
        second, _ = read_wav(parts[1] / "recording.wav")
        assert len(joined) == len(first) + len(second)
        # In order: the speaker before the crash, then after it.
        assert tone_power(joined[rate : 3 * rate], rate, 600) > 0.5
        assert tone_power(joined[-3 * rate : -rate], rate, 900) > 0.5
        assert json.loads(packaged.read_text())["duration"] >= (len(joined) / rate) - 0.5
        assert "its replay joins" in restarted.log()

        database = Path(restarted.database.engine.url.database or "")
        private = [database, restarted.data_dir, *restarted.data_dir.rglob("*")]
        private += [database.with_name(database.name + s) for s in ("-wal", "-shm")]
        for path in private:
            if not path.exists() or path.name == "server.log":
                continue
            if path.is_dir():
                assert _mode(path) == 0o700, path
            else:
                assert _mode(path) == 0o600, path
        assert layout.webcasts(restarted.data_dir).is_dir()
    before.join(timeout=60)
