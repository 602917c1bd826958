"""Slides in step with the webcast's audio, in real Chromium against a real `callbridge serve`.

The operator uploads a deck (a PDF Chromium printed) before the call and refuses
what is not one; during the call the moderator shows slides, and the listener's
page switches when the audio it plays reaches each change (the part's
program date-time), about the webcast's latency after the click, never at the
click. After the call the replay shows the right slide wherever one seeks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import launch
from tests.support.pcap import passcode_stream
from tests.support.sipp import call_in
from tests.telephony.conftest import RunningServer, need

# It times the switch against the audio: alone, after the parallel part.
pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.serial]

DECK_HTML = "".join(
    f'<section style="page-break-after: always; height: 90vh"><h1>Slide {n}</h1>'
    f"<p>Revenue grew {n}0% in the quarter.</p></section>"
    for n in (1, 2, 3)
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as running:
        yield running


def make_deck(browser: Any, path: Path) -> bytes:
    page = browser.new_page()
    page.set_content(DECK_HTML)
    data: bytes = page.pdf(format="A4", landscape=True)
    page.close()
    path.write_bytes(data)
    return data


def upload(server: RunningServer, event_id: int, name: str, data: bytes) -> Any:
    return server.api(
        "POST",
        f"/api/events/{event_id}/deck",
        files={"deck": (name, data, "application/pdf")},
        timeout=60,
    )


def test_slides_switch_with_the_audio_live_and_on_the_replay(
    server: RunningServer, browser: Any, tmp_path: Path
) -> None:
    event = server.create_event(registration="off")
    refused = upload(server, event.id, "deck.pptx", b"PK\x03\x04 not a pdf")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["msg"].startswith("the file is not a PDF")
    deck = upload(server, event.id, "Q3 deck.pdf", make_deck(browser, tmp_path / "deck.pdf"))
    assert deck.status_code == 201, deck.text
    assert deck.json()["pages"] == 3
    print(f"deck of 3 pages rendered in {deck.json()['render_seconds']} s")
    # Slides are shown while the call is live only, and only slides the deck has.
    early = server.api("POST", f"/api/events/{event.id}/slides", json={"slide": 1})
    assert early.status_code == 409

    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    # A speaker on the call, so that there is a recording to replay.
    need("sipp")
    speaker = threading.Thread(
        target=call_in,
        args=(server.sip_target, tmp_path, passcode_stream([event.speaker_passcode + "#"])),
        kwargs={"stay_ms": 90_000, "timeout": 120},
    )
    speaker.start()
    server.wait_for(lambda: server.participants(event.id), timeout=20)
    beyond = server.api("POST", f"/api/events/{event.id}/slides", json={"slide": 9})
    assert beyond.status_code == 422 and "the deck has 3 slides" in beyond.text
    again = upload(server, event.id, "new.pdf", (tmp_path / "deck.pdf").read_bytes())
    assert again.status_code == 409  # the call's changes name this deck's pages

    page = browser.new_page()
    page.goto(f"{server.http_url}/events/{event.id}/webcast")
    assert page.get_by_role("link", name="Download the slides (PDF, 3 pages)").is_visible()
    page.wait_for_function(
        "() => document.getElementById('webcast').dataset.playing === 'live'", timeout=30_000
    )
    page.wait_for_function("() => document.getElementById('media').currentTime > 1", timeout=30_000)

    switches = []
    for slide in (1, 2):
        shown = server.api("POST", f"/api/events/{event.id}/slides", json={"slide": slide})
        assert shown.status_code == 200
        clicked = time.monotonic()
        at = datetime.fromisoformat(shown.json()["at"]).timestamp()
        page.wait_for_function(
            f"() => document.getElementById('slides').dataset.slide === '{slide}'",
            timeout=10_000,
        )
        waited = time.monotonic() - clicked
        audio_at = float(page.get_attribute("#slides", "data-audio-at") or 0) / 1000
        switches.append((waited, audio_at - at))
        time.sleep(2)
    for waited, behind in switches:
        print(f"slide switch: {waited:.2f} s after the click; audio {behind * 1000:.0f} ms past it")
        # The page switched when its audio reached the change, not before and not long after.
        # (START-DATE is in whole milliseconds: the switch may come that much early.)
        assert -0.001 <= behind <= 0.5
        assert waited > 0.3  # it waited for the audio: the webcast runs behind the phone
    # The live playlist carries the changes on its timeline (what the page learns first).
    playlist = server.api("GET", f"/webcast/{event.id}/live/index.m3u8").text
    assert 'CLASS="com.callbridge.slide"' in playlist and "X-CB-SLIDE=2" in playlist
    image = page.locator("#slide")
    assert image.get_attribute("alt") == "Slide 2 of 3"
    assert page.evaluate("document.getElementById('slide').naturalWidth") == 1280

    # Some audio after the last change, so the replay runs on past it whatever its last
    # part's length (it once ended less than a second after the change).
    time.sleep(3)
    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    speaker.join(timeout=60)
    server.wait_for(
        lambda: server.api("GET", f"/api/events/{event.id}/webcast").json()["replay"] == "ready",
        timeout=90,
    )
    # The page offers the replay; the listener plays it.
    page.click("#replay-start", timeout=90_000)
    page.wait_for_function(
        "() => document.getElementById('webcast').dataset.playing === 'replay'", timeout=30_000
    )
    changes = server.api("GET", f"/api/events/{event.id}/slides").json()["changes"]
    second = changes[1]["offset"]
    assert second is not None and second > changes[0]["offset"] >= 0
    page.wait_for_function(
        f"() => document.getElementById('media').duration > {second + 1}",
        timeout=20_000,
        polling=200,
    )
    for seek, slide in ((second - 0.6, "1"), (second + 0.6, "2")):
        page.evaluate(f"document.getElementById('media').currentTime = {seek}")
        page.wait_for_function(
            f"() => document.getElementById('slides').dataset.slide === '{slide}'", timeout=10_000
        )
    pdf = server.api("GET", f"/events/{event.id}/deck.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf"
