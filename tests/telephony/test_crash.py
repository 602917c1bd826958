"""SIGKILL in the middle of a call: the recording up to the last seconds survives."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.baresip import read_wav, tone_power
from tests.support.pcap import passcode_stream, write_pcap
from tests.support.sipp import SCENARIOS, run_sipp
from tests.telephony.conftest import need, start_server

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
        pcap = tmp_path / "speaker.pcap"
        write_pcap(pcap, passcode_stream([event.speaker_passcode], tone=tone, talk_after=14))
        sipp = threading.Thread(
            target=run_sipp,
            args=(SCENARIOS / "dial_in.xml", server.sip_target, tmp_path),
            kwargs={"substitutions": {"pcap": str(pcap), "stay_ms": "13000"}, "timeout": 18},
        )
        sipp.start()
        server.wait_for(lambda: server.participants(event.id), timeout=15)
        joined = time.monotonic()
        time.sleep(9.0)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        killed_after = time.monotonic() - joined
        folder = server.data_dir / "recordings" / f"event-{event.id}"
        assert list(folder.glob("*/mix/*.chunk")), "nothing was on disk at the crash"
        assert not list(folder.glob("*/assembled.json"))
    sipp.join(timeout=60)

    with start_server(home) as restarted:
        done = restarted.wait_for(lambda: list(folder.glob("*/assembled.json")), timeout=20)
        heard, rate = read_wav(done[0].parent / "recording.wav")
        seconds = len(heard) / rate
        # Chunks are 2 s; at most the last one in flight is lost.
        assert seconds >= killed_after - 3.0, (seconds, killed_after)
        assert tone_power(heard[-2 * rate :], rate, 600) > 0.5
        assert "recovered the recording" in restarted.log()
