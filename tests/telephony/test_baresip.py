"""baresip, a second and independent SIP client, dials in and records what it hears."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.baresip import Baresip, rms_windows, tone_power, write_wav
from tests.support.pcap import passcode_stream
from tests.support.sipp import Dialing
from tests.telephony.conftest import DID, RunningServer, need

pytestmark = pytest.mark.baresip

TONE_HZ = 1000.0


def tone_frame() -> np.ndarray:
    t = np.arange(160) / 8000
    return (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)


def test_listener_hears_the_prompt_then_the_speaker(server: RunningServer, tmp_path: Path) -> None:
    need("baresip")
    need("sipp")
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200

    # The speaker: sipp keys the speaker code, then "talks" a 1 kHz tone.
    speaker = Dialing(
        server.sip_target,
        tmp_path,
        passcode_stream([event.speaker_passcode], tone=tone_frame(), talk_after=16),
        name="speaker",
        stay_ms=18000,
        timeout=40,
    )

    # The listener: baresip dials, keys the listener code, records what it hears.
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(8000 * 20, dtype=np.int16))
    with Baresip(tmp_path / "baresip", silence) as phone:
        phone.dial(f"sip:{DID[1:]}@127.0.0.1:{server.sip_port}", seconds=16)
        time.sleep(2.0)  # into the welcome prompt: the keys barge in
        phone.send_digits(event.passcode + "#")
        server.wait_for(
            lambda: any(p["role"] == "listener" for p in server.participants(event.id)),
            timeout=15,
        )
        phone.wait(timeout=30)
        heard, rate = phone.heard()
    spoke = speaker.result(timeout=60)
    assert spoke.ok, spoke.output[-2000:]

    levels = rms_windows(heard, rate)
    # The welcome prompt in the first seconds: speech, well above silence.
    assert levels[3:15].max() > 500, levels[:20]
    # Later, after joining: the speaker's tone dominates what the listener hears.
    joined = heard[int(rate * 10.5) : int(rate * 14.5)]
    assert len(joined) > rate * 3, len(heard) / rate
    assert tone_power(joined, rate, TONE_HZ) > 0.6
    roles = {p["role"] for p in server.participants(event.id, include_left=True)}
    assert roles == {"speaker", "listener"}
