"""The webcast end to end: a sipp speaker on the phone, the investor page in real Chromium.

Live: the page plays the call through hls.js in low-latency mode; its
``currentTime`` advances; the speaker's tone bursts are heard in the page
(Web Audio analyser on the media element); the latency behind the live mix
is read from hls.js (EXT-X-PROGRAM-DATE-TIME against the page's clock) and
from the tone onsets (the server sees the speaker talk; the page hears it).
After the call: the page offers the replay, which plays (when asked) and seeks;
the replay window over, the media answer 410.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import launch
from tests.support.webcast_audio import hear_live
from tests.telephony.conftest import RunningServer, need

pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.serial]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with launch() as browser:
        yield browser.new_page(viewport={"width": 420, "height": 900})


def test_live_webcast_then_replay(server: RunningServer, tmp_path: Path, browser_page: Any) -> None:
    need("sipp")
    page = browser_page
    event = server.create_event(starts_in=timedelta(minutes=-1), registration="off")
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    server.wait_for(
        lambda: server.api("GET", f"/api/events/{event.id}/webcast").json()["live_playlist"],
        timeout=15,
    )

    report, talk_seconds = hear_live(
        server, page, f"{server.http_url}/events/{event.id}/webcast", event, tmp_path
    )
    (tmp_path / "latency.json").write_text(json.dumps(report))

    # The call ends: the page says so, then offers the replay when it is packaged; the
    # replay plays when the listener asks for it, never by itself.
    ended = time.monotonic()
    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    page.wait_for_selector("#replay-start", timeout=60_000)
    print("REPLAY OFFERED ON THE PAGE", round(time.monotonic() - ended, 2), "s after the end")
    assert not page.evaluate("document.getElementById('webcast').dataset.playing")
    page.click("#replay-start")
    page.wait_for_function(
        "() => document.getElementById('webcast').dataset.playing === 'replay'", timeout=10_000
    )
    page.wait_for_function(
        "() => Number.isFinite(document.getElementById('media').duration)"
        " && document.getElementById('media').duration > 10",
        timeout=20_000,
    )
    duration = page.evaluate("document.getElementById('media').duration")
    assert duration > talk_seconds - 2
    page.evaluate("document.getElementById('media').currentTime = 12")
    page.wait_for_function(
        "() => document.getElementById('media').currentTime >= 12.5", timeout=15_000
    )
    status = server.api("GET", f"/api/events/{event.id}/webcast").json()
    assert status["replay"] == "ready"
    assert httpx_get(server.http_url + status["replay_download"]).status_code == 200
    # The transcript and its captions follow the replay: test_transcript_call waits for them.


def httpx_get(url: str) -> Any:
    import httpx

    return httpx.get(url, timeout=10)
