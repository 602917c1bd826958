"""The moderator console in real Chromium, with real callers on the other side.

A sipp caller joins listen-only and presses *1; the console shows it in the
question queue within a second; the operator clicks "Open line", and the
caller's voice (a tone) reaches a baresip listener, who did not hear it
while the caller was only listening.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.baresip import Baresip, tone_power, write_wav
from tests.support.chromium import launch
from tests.support.pcap import passcode_stream
from tests.support.sipp import Dialing
from tests.telephony.conftest import DID, RunningServer, need

pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.baresip]

TONE_HZ = 700.0


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with launch() as browser:
        yield browser.new_page(viewport={"width": 1200, "height": 900})


def test_question_queue_and_open_line(
    server: RunningServer, tmp_path: Path, browser_page: Any
) -> None:
    need("sipp")
    need("baresip")
    page = browser_page
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200

    page.goto(f"{server.http_url}/login?next=/console/events/{event.id}")
    page.fill("input[name=name]", "operator")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/console/events/{event.id}")
    page.wait_for_selector("#call-state:text('live')")

    # A listener who records what they hear.
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(8000 * 30, dtype=np.int16))
    phone = Baresip(tmp_path / "baresip", silence, user="listener")
    phone.dial(f"sip:{DID[1:]}@127.0.0.1:{server.sip_port}", seconds=26)
    dialled_at = time.monotonic()
    time.sleep(1.5)
    phone.send_digits(event.passcode + "#")

    # The questioner: joins listen-only, presses *1, and talks (a tone) from then on.
    t = np.arange(160) / 8000
    tone = (9000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
    questioner = Dialing(
        server.sip_target,
        tmp_path,
        passcode_stream([event.passcode + "#", "*1"], between_codes=2.0, tone=tone, talk_after=22),
        name="questioner",
        stay_ms=24000,
        timeout=45,
    )
    try:
        page.wait_for_selector("#queue li", timeout=20_000)
        shown_at = datetime.now(UTC)
        queued = [
            e
            for e in server.api("GET", f"/api/events/{event.id}/audit").json()
            if e["kind"] == "queue"
        ]
        assert queued, "the console shows a queue entry the log does not have"
        pressed_at = datetime.fromisoformat(queued[0]["at"])
        delay = (shown_at - pressed_at).total_seconds()
        assert delay < 1.0, f"*1 reached the console after {delay:.2f} s"

        # Let the questioner "talk" unheard for a while, then give them the floor.
        time.sleep(6.0)
        closed_until = time.monotonic() - dialled_at
        page.click("#queue li button[data-action=open_line]")
        opened_at = time.monotonic() - dialled_at
        page.wait_for_selector("#participants td:text('question (line open)')", timeout=5000)
        assert page.locator("#queue li").count() == 0

        phone.wait(timeout=40)
        heard, rate = phone.heard()
    finally:
        phone.stop()
        asked = questioner.result(timeout=60)
    assert asked.ok, asked.output[-2000:]

    def window(start: float, end: float) -> np.ndarray:
        return heard[int(rate * start) : int(rate * end)]

    # The recording starts when baresip has started and the call is answered,
    # up to about two seconds after the dial; the windows leave room for that.
    before = window(closed_until - 4.5, closed_until - 2.0)
    after = window(opened_at + 2.5, opened_at + 6.0)
    assert len(after) > rate * 3
    assert tone_power(before, rate, TONE_HZ) < 0.1, "a listen-only caller was heard"
    assert tone_power(after, rate, TONE_HZ) > 0.5, "the open line did not reach the listener"
    kinds = [e["kind"] for e in server.api("GET", f"/api/events/{event.id}/audit").json()]
    assert "line_open" in kinds
