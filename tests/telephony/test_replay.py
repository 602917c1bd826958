"""Replay by phone: a recorded call played back to baresip through the replay number and code."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from callbridge.store import layout
from callbridge.store.models import CallLogRow
from tests.support.baresip import Baresip, rms_windows, tone_power, write_wav
from tests.support.pcap import passcode_stream
from tests.support.sipp import call_in
from tests.telephony.conftest import RunningServer, need

pytestmark = [pytest.mark.baresip, pytest.mark.sipp]

REPLAY_DID = "+19135550188"
REPLAY_CODE = "44170"
TONE_HZ = 1000.0


def tone_frame() -> np.ndarray:
    t = np.arange(160) / 8000
    return (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)


def _replay_event(server: RunningServer, code: str) -> int:
    event = server.create_event(
        starts_in=timedelta(minutes=-1),
        replay_passcode=code,
        replay_dial_in=[{"label": "Replay", "number": REPLAY_DID}],
    )
    return event.id


def test_a_replay_code_before_the_call_ends_is_refused(
    server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    event_id = _replay_event(server, "44171")
    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream(["44171"]),
        name="early",
        wait_ms=20000,
        service=REPLAY_DID[1:],
        timeout=30,
    )
    assert result.ok, result.output[-2000:] + result.errors[-2000:]
    with server.database.session() as session:
        joins = session.scalars(
            select(CallLogRow).where(CallLogRow.event_id == event_id, CallLogRow.kind == "join")
        ).all()
    assert joins == []


def test_the_replay_plays_the_recorded_call(server: RunningServer, tmp_path: Path) -> None:
    need("sipp")
    need("baresip")
    event_id = _replay_event(server, REPLAY_CODE)
    speaker_code = server.api("GET", f"/api/events/{event_id}").json()
    assert server.api("POST", f"/api/events/{event_id}/start").status_code == 200

    # The call: a speaker talks a 1 kHz tone for a few seconds; then the operator ends it.
    spoke = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([speaker_code["speaker_passcode"]], tone=tone_frame(), talk_after=8),
        name="speaker",
        stay_ms=10000,
        timeout=40,
    )
    assert spoke.ok, spoke.output[-2000:]
    assert server.api("POST", f"/api/events/{event_id}/end").status_code == 200
    recordings = layout.event_recordings(server.data_dir, event_id)
    server.wait_for(lambda: list(recordings.glob("*/assembled.json")), timeout=30)

    # The replay: baresip dials the replay number, keys the code, and listens.
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(8000 * 30, dtype=np.int16))
    with Baresip(tmp_path / "baresip", silence) as phone:
        phone.dial(f"sip:{REPLAY_DID[1:]}@127.0.0.1:{server.sip_port}", seconds=22)
        time.sleep(1.5)
        phone.send_digits(REPLAY_CODE + "#")
        phone.wait(timeout=40)
        heard, rate = phone.heard()

    levels = rms_windows(heard, rate)
    assert levels[:3].max() > 500, levels[:10]  # the welcome prompt
    # The recorded tone, somewhere after the replay's welcome and the speaker's passcode.
    window = int(rate * 2)
    best = max(
        tone_power(heard[start : start + window], rate, TONE_HZ)
        for start in range(0, max(1, len(heard) - window), rate // 2)
    )
    assert best > 0.6, levels
    with server.database.session() as session:
        rows = session.scalars(
            select(CallLogRow).where(CallLogRow.event_id == event_id, CallLogRow.role == "replay")
        ).all()
    assert [row.kind for row in rows] == ["join"]
    server.wait_for(
        lambda: any(
            row.kind == "leave" and row.participant_id == rows[0].participant_id
            for row in _log(server, event_id)
        ),
        timeout=10,
    )


def _log(server: RunningServer, event_id: int) -> list[CallLogRow]:
    with server.database.session() as session:
        return list(
            session.scalars(select(CallLogRow).where(CallLogRow.event_id == event_id)).all()
        )
