"""The engagement report from a real call: a sipp caller who presses *1, a web listener
registered in Chromium whose page beacons as it plays and stays open past the end (it is
offered the replay, which does not play by itself, and is no replay listener until it
chooses to play it), a phone replay caller and a browser on the replay."""

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
from tests.support.wait import wait_until
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
    # its page sends a beacon as it starts playing and one per interval after. It stays
    # on the page past the end of the call.
    with launch() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{server.http_url}/events/{event.id}/webcast")
        page.fill("#reg-name", "Ada Analyst")
        page.fill("#reg-email", "ada@acme.example")
        # The page plays at once (registration is optional) and its first beacon gives the
        # browser its id: the registration waits for that answer, so the time counted
        # before and after it is Ada's (a registration sent first made a second listener).
        with page.expect_navigation(timeout=30_000):
            page.click("form.register button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('webcast')?.dataset.playing === 'live'",
            timeout=30_000,
        )
        page.wait_for_function(
            "() => document.getElementById('media').currentTime > 1", timeout=30_000
        )
        server.wait_for(lambda: report()["live listeners"][1] == "1", timeout=2 * BEACON_INTERVAL)

        def ada_live_seconds() -> int:
            rows = _csv(server, event.id, "attendance")
            return sum(int(r["live_seconds"] or 0) for r in rows if r["name"] == "Ada Analyst")

        # The page's schedule runs from the start of playback: its first interval's beacon
        # credits the interval (a lost one, the next credits both).
        wait_until(
            lambda: ada_live_seconds() >= 10,
            2 * BEACON_INTERVAL,
            "Ada's live seconds",
            lambda: f"attendance: {_csv(server, event.id, 'attendance')}\n{server.log()[-2000:]}",
        )
        # From here on, count every time the page's player starts playing.
        page.evaluate(
            """() => { window.plays = 0; document.getElementById('media')
                .addEventListener('playing', () => window.plays++); }"""
        )

        assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
        page.wait_for_selector("#webcast-status:has-text('The call has ended')", timeout=15_000)
        recordings = layout.event_recordings(server.data_dir, event.id)
        server.wait_for(lambda: list(recordings.glob(f"*/{REPLAY_DIR}/{REPLAY_READY}")), 60)
        # The page offers the replay with a button; it does not play it by itself.
        offer = page.locator("#replay-start")
        offer.wait_for(timeout=15_000)
        assert offer.inner_text() == "Play the replay"
        assert "The call has ended." in page.locator("#webcast-status").inner_text()
        shots = tmp_path / "screenshots"
        shots.mkdir()
        page.screenshot(path=str(shots / "webcast-ended-1366x768.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(shots / "webcast-ended-390x844.png"), full_page=True)
        state = page.evaluate(
            """() => ({plays: window.plays, paused: document.getElementById('media').paused,
                playing: document.getElementById('webcast').dataset.playing,
                player: document.getElementById('player').hidden})"""
        )
        assert state == {"plays": 0, "paused": True, "playing": "", "player": True}
        # What only a live call has is gone: the LIVE badge, the question form, the dial-in.
        assert page.locator("#webcast.is-live, .badge.live:not(#live-badge)").count() == 0
        assert not page.locator("section.ask").is_visible()
        assert not page.locator("section.dial-in").is_visible()

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
        # Ada, whose page stayed open, is a live listener and not a replay listener:
        # the only web replay listener is the browser that chose to play it.
        assert page.evaluate("window.plays") == 0
        assert figures["registrations"] == ["", "1", "1"]
        assert figures["live listeners"] == ["1", "1", "2"]
        assert figures["replay listeners"] == ["1", "1", "2"]
        assert figures["questions asked"] == ["1", "0", "1"]
        phone_live, web_live = (float(v) for v in figures["live minutes heard"][:2])
        assert 4 / 60 < phone_live < 30 / 60  # the caller stayed about 7 s after the IVR
        assert 0 < web_live <= 0.6  # up to two beacon intervals, as the page played
        assert float(figures["replay minutes heard"][0]) > 0
        assert float(figures["replay minutes heard"][1]) < 0.2  # the other browser's 2.5 s

        attendance = _csv(server, event.id, "attendance")
        (ada,) = [row for row in attendance if row["name"] == "Ada Analyst"]
        assert int(ada["live_seconds"]) >= 10 and ada["replay_seconds"] == "0"
        assert ada["seconds"] == ada["live_seconds"]
        phone = [row for row in attendance if row["channel"] == "phone"]
        # sipp's From user: what the loopback trunk vouches for.
        assert [(row["role"], row["caller_id"]) for row in phone] == [
            ("listener", "analyst1"),
            ("replay", "analyst1"),
        ]
        assert phone[0]["live_seconds"] == phone[0]["seconds"] and phone[0]["replay_seconds"] == ""
        assert phone[1]["replay_seconds"] == phone[1]["seconds"] and phone[1]["live_seconds"] == ""
        (asked,) = _csv(server, event.id, "questions")
        assert (asked["kind"], asked["caller_id"], asked["outcome"]) == (
            "keypad",
            "analyst1",
            "left",
        )
        assert asked["asked_at"] and asked["line_opened_at"] == ""

        # Ada chooses the replay: it plays from the start, and only now.
        page.click("#replay-start")
        page.wait_for_function(
            "() => document.getElementById('webcast').dataset.playing === 'replay'"
            " && document.getElementById('media').currentTime > 0.5",
            timeout=20_000,
        )
        assert page.evaluate("window.plays") >= 1
        assert "Replay." in page.locator("#webcast-status").inner_text()
        page.screenshot(path=str(shots / "webcast-replay-390x844.png"), full_page=True)


def _csv(server: RunningServer, event_id: int, name: str) -> list[dict[str, str]]:
    answer = server.api("GET", f"/api/events/{event_id}/{name}.csv")
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))
