"""A replay window moved after the call, heard by phone and fetched from the web.

A real call is recorded (a sipp speaker), the operator extends the replay
through the API, and `callbridge serve` is started again on the same
database and files under ``faketime``: on one of the extended days the
replay number plays the recording and the web replay is served; the day
after the window, the caller hears the polite refusal (no join, the server
hangs up) and the web answers 410 Gone.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from callbridge.store import layout
from callbridge.store.models import CallLogRow
from callbridge.web.media import REPLAY_DIR, REPLAY_PLAYLIST, REPLAY_READY
from tests.support.pcap import passcode_stream
from tests.support.sipp import call_in
from tests.telephony.conftest import RunningServer, need, start_server
from tests.telephony.test_replay import REPLAY_DID, tone_frame

pytestmark = [pytest.mark.sipp]

CODE = "44190"
EXTENDED_BY = timedelta(days=10)


def _replay_call(server: RunningServer, tmp_path: Path, name: str) -> float:
    """Dial the replay number, key the code, wait for the server's BYE; seconds it took."""
    workdir = tmp_path / name
    workdir.mkdir()
    stream = passcode_stream([CODE])
    began = time.monotonic()
    result = call_in(
        server.sip_target,
        workdir,
        stream,
        wait_ms=60000,
        service=REPLAY_DID[1:],
        timeout=80,
    )
    assert result.ok, result.output[-2000:] + result.errors[-2000:] + server.log()[-3000:]
    return time.monotonic() - began


def _replay_joins(server: RunningServer, event_id: int) -> list[CallLogRow]:
    with server.database.session() as session:
        return list(
            session.scalars(
                select(CallLogRow).where(
                    CallLogRow.event_id == event_id,
                    CallLogRow.role == "replay",
                    CallLogRow.kind == "join",
                )
            ).all()
        )


def _later(days: int) -> tuple[str, ...]:
    # faketime shifts every clock of serve and its children by the same offset.
    return ("faketime", "-f", f"+{days}d")


def test_an_extended_replay_plays_on_the_extended_days_and_is_gone_after(
    tmp_path: Path,
) -> None:
    need("sipp")
    need("faketime")
    root = tmp_path / "server"
    root.mkdir()
    with start_server(root) as server:
        event = server.create_event(
            starts_in=timedelta(minutes=-1),
            replay_passcode=CODE,
            replay_until=datetime.now(UTC).date(),
            registration="off",
            replay_dial_in=[{"label": "Replay", "number": REPLAY_DID}],
        )
        assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
        spoke = call_in(
            server.sip_target,
            tmp_path,
            passcode_stream([event.speaker_passcode], tone=tone_frame(), talk_after=6),
            name="speaker",
            stay_ms=8000,
            timeout=40,
        )
        assert spoke.ok, spoke.output[-2000:]
        assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
        recordings = layout.event_recordings(server.data_dir, event.id)
        server.wait_for(lambda: list(recordings.glob(f"*/{REPLAY_DIR}/{REPLAY_READY}")), 60)

        today = datetime.now(UTC).date()
        early = server.api("PATCH", f"/api/events/{event.id}", json={"replay_until": "2020-01-01"})
        assert early.status_code == 422
        assert early.json()["detail"][0]["msg"] == (
            f"the replay cannot end before the call ended ({today.isoformat()})"
        )
        last_day = today + EXTENDED_BY
        moved = server.api(
            "PATCH", f"/api/events/{event.id}", json={"replay_until": last_day.isoformat()}
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["replay_until"] == last_day.isoformat()

    playlist = f"/webcast/{event.id}/replay/{REPLAY_PLAYLIST}"
    # Eight days on: past the announced window, inside the extended one.
    with start_server(root, prefix=_later(8)) as later:
        assert httpx.get(later.http_url + playlist, timeout=10).status_code == 200
        page = httpx.get(later.http_url + "/events", timeout=10).text
        assert "Replay available through" in page
        seconds = _replay_call(later, tmp_path, "extended")
        (joined,) = _replay_joins(later, event.id)
        assert seconds > 6  # the welcome, then the recording: the speaker talked 6 s
        assert joined.at.date() == today + timedelta(days=8)

    # The day after the extended window: gone on the web, a polite refusal by phone.
    with start_server(root, prefix=_later(EXTENDED_BY.days + 1)) as after:
        assert httpx.get(after.http_url + playlist, timeout=10).status_code == 410
        assert "Replay expired" in httpx.get(after.http_url + "/events", timeout=10).text
        seconds = _replay_call(after, tmp_path, "expired")
        assert len(_replay_joins(after, event.id)) == 1  # still only the call on day 8
        assert seconds < 20, seconds  # the refusal prompt, then the server hangs up
