"""The engagement report from a real call: a sipp caller who presses *1, a web listener
registered in Chromium whose page beacons as it plays, a phone replay caller and a browser
on the replay."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from callbridge.store import layout
from callbridge.store.audience import BEACON_INTERVAL
from callbridge.web.media import REPLAY_DIR, REPLAY_READY
from tests.support.chromium import launch
from tests.support.pcap import passcode_stream
from tests.support.sipp import call_in
from tests.telephony.conftest import RunningServer, need
from tests.telephony.test_replay import REPLAY_DID

pytestmark = [pytest.mark.sipp, pytest.mark.browser]

REPLAY_CODE = "44191"


def _beacons(web: httpx.Client, server: RunningServer, event_id: int, mode: str) -> None:
    """Two beacons the minimum gap apart: the server credits the time between them."""
    url = f"{server.http_url}/api/events/{event_id}/webcast/beacon"
    # The beacon route reads the event at most every two seconds, and answers the first
    # beacon after that from the entry it replaces: a change of state shows a moment late.
    server.wait_for(lambda: web.post(url, json={"mode": mode}).status_code == 204, 10, 0.5)
    time.sleep(2.5)
    answer = web.post(url, json={"mode": mode})
    assert answer.status_code == 204, answer.text


def test_the_report_counts_a_real_call(server: RunningServer, tmp_path: Path) -> None:
    need("sipp")
    event = server.create_event(
        starts_in=timedelta(minutes=-1),
        registration="optional",
        replay_passcode=REPLAY_CODE,
        replay_until=datetime.now(UTC).date() + timedelta(days=3),
        replay_dial_in=[{"label": "Replay", "number": REPLAY_DID}],
    )
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200

    def report() -> dict[str, list[str]]:
        answer = server.api("GET", f"/api/events/{event.id}/report.csv")
        assert answer.status_code == 200, answer.text
        rows = list(csv.reader(io.StringIO(answer.text)))
        return {row[4]: row[5:] for row in rows[1:]}

    # A phone listener keys the passcode, presses *1 and stays a few seconds.
    called = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.passcode + "#", "*1"], between_codes=2.0),
        name="listener",
        stay_ms=7000,
        timeout=40,
    )
    assert called.ok, called.output[-2000:]

    # A web listener in Chromium registers on the webcast page and plays the live call;
    # its page sends a beacon as it starts playing and one per interval after.
    with launch() as browser:
        page = browser.new_page()
        page.goto(f"{server.http_url}/events/{event.id}/webcast")
        page.fill("#reg-name", "Ada Analyst")
        page.fill("#reg-email", "ada@acme.example")
        page.click("form.register button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('webcast').dataset.playing === 'live'", timeout=30_000
        )
        page.wait_for_function(
            "() => document.getElementById('media').currentTime > 1", timeout=30_000
        )
        server.wait_for(lambda: report()["live listeners"][1] == "1", timeout=2 * BEACON_INTERVAL)

    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    recordings = layout.event_recordings(server.data_dir, event.id)
    server.wait_for(lambda: list(recordings.glob(f"*/{REPLAY_DIR}/{REPLAY_READY}")), 60)
    # Another browser (its signed id from its first beacon) plays the replay.
    with httpx.Client(timeout=10) as web:
        assert web.get(f"{server.http_url}/events/{event.id}/webcast").status_code == 200
        _beacons(web, server, event.id, "replay")

    # A phone replay caller listens to the recording to its end.
    replayed = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([REPLAY_CODE]),
        name="replay",
        wait_ms=60000,
        service=REPLAY_DID[1:],
        timeout=80,
    )
    assert replayed.ok, replayed.output[-2000:]

    figures = server.wait_for(
        lambda: (found := report())["replay listeners"][0] == "1" and found, timeout=15
    )
    assert figures["registrations"] == ["", "1", "1"]
    assert figures["live listeners"] == ["1", "1", "2"]
    assert figures["replay listeners"] == ["1", "1", "2"]
    assert figures["questions asked"] == ["1", "0", "1"]
    phone_live, web_live = (float(v) for v in figures["live minutes heard"][:2])
    assert 4 / 60 < phone_live < 30 / 60  # the caller stayed about 7 s after the IVR
    assert 0.2 <= web_live <= 0.6  # one beacon interval or two, as the page played
    assert float(figures["replay minutes heard"][0]) > 0
