"""The moderator's desk in real Chromium, with real callers on the other side.

Before the call the desk offers Start (and the deck's upload) only, and says
"scheduled". Once started, the call's timer runs from its actual start, and
Lock gives way to Unlock and back. The keys step through the deck (never
while the operator types). A sipp caller joins listen-only and presses *1;
the desk shows it in the question queue within a second; the operator opens
the first question's line with a key, "On air" names them, and the caller's
voice (a tone) reaches a baresip listener, who did not hear it while the
caller was only listening; another key closes the line. The live captions
stay in their box. axe-core finds nothing serious, the page's policy is never
violated, and screenshots at 1366×768 and 390×844 are kept under tmp_path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callbridge.store import layout
from callbridge.webcast.captions import TRANSCRIPT
from tests.support.baresip import Baresip, tone_power, write_wav
from tests.support.chromium import launch
from tests.support.pcap import passcode_stream
from tests.support.sipp import Caller, Dialing
from tests.telephony.conftest import DID, RunningServer, need

pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.baresip]

TONE_HZ = 700.0
WIDE = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
AXE = Path(__file__).parents[1] / "support" / "vendor" / "axe.min.js"
SPEAKER = {"name": "Mark Chen", "title": "Chief Financial Officer", "phone": "+16175550147"}
QUESTIONER = "Priya Natarajan, Halvorsen Partners"
DECK_HTML = "".join(
    '<section style="page-break-after: always; height: 92vh; font-family: sans-serif;'
    ' padding: 6vh 8vw; box-sizing: border-box; border-top: 2.5vh solid #0b3d6e">'
    f'<p style="color: #0b3d6e; font-size: 2.2vh">NORTHWIND BIOLOGICS · Q3 FY2026</p>'
    f'<h1 style="font-size: 7vh; margin: 4vh 0">{title}</h1>'
    f'<p style="font-size: 3.5vh; color: #444">{line}</p></section>'
    for title, line in (
        ("Third Quarter 2026 Results", "Earnings call · November 2026"),
        ("Highlights", "Revenue $412 million, up 18% year over year"),
        ("Financial Review", "Gross margin 71.4%; operating cash flow $96 million"),
        ("Outlook", "Raising full-year revenue guidance to $1.62–1.65 billion"),
    )
)
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" "))}));
}"""


@pytest.fixture
def browser() -> Iterator[Any]:
    with launch() as running:
        yield running


def _offered(page: Any, name: str) -> bool:
    button = page.get_by_role("button", name=name, exact=True)
    return bool(button.count() and button.is_visible() and button.is_enabled())


def _offers(page: Any) -> set[str]:
    names = ("Start call", "Lock", "Unlock", "Mute all", "Unmute all", "End call")
    return {name for name in names if _offered(page, name)}


def _deck(browser: Any) -> bytes:
    maker = browser.new_page()
    maker.set_content(DECK_HTML)
    data: bytes = maker.pdf(format="A4", landscape=True)
    maker.close()
    return data


def _axe(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not AXE.is_file():
        pytest.skip("axe-core is not vendored (run scripts/build-static)")
    # The page's policy allows no inline script: the engine goes in through the DevTools.
    page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [
        f"[{f['impact']}] {f['id']}: {f['help']} ({', '.join(f['nodes'])})"
        for f in found
        if f["impact"] in ("serious", "critical")
    ]


def _cut_off(page: Any) -> list[str]:
    """Visible buttons and panels that reach past the window's right edge (the slides'
    thumbnails scroll sideways in their strip, and are left out)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('#desk button, #desk .panel, .desk-bar')]
            .filter((e) => e.offsetParent !== null && !e.closest('.slide-thumbs'))
            .filter((e) => e.getBoundingClientRect().right > innerWidth + 1)
            .map((e) => (e.id || e.className) + ': ' + e.textContent.trim().slice(0, 30))"""
    )
    return found


def _timer(page: Any) -> str:
    return str(page.locator("#call-timer").inner_text())


def test_question_queue_and_open_line(server: RunningServer, tmp_path: Path, browser: Any) -> None:
    need("sipp")
    need("baresip")
    event = server.create_event(speakers=[SPEAKER])
    deck = server.api(
        "POST",
        f"/api/events/{event.id}/deck",
        files={"deck": ("Q3 deck.pdf", _deck(browser), "application/pdf")},
        timeout=60,
    )
    assert deck.status_code == 201, deck.text

    page = browser.new_page(viewport=WIDE)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # A refused script, style or fetch: the policy's report in the console.
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{server.http_url}/login?next=/console/events/{event.id}")
    page.fill("input[name=name]", "operator")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/console/events/{event.id}")

    # Before the call: "scheduled", Start and the deck's upload only; the deck's four
    # slides as thumbnails.
    page.wait_for_selector("#slide-thumbs img >> nth=3")
    assert page.locator("#call-state").inner_text() == "scheduled"
    assert _offers(page) == {"Start call"}
    assert page.locator("#deck-form").is_visible()
    assert _timer(page) == "0:00:00"
    page.screenshot(path=str(tmp_path / "desk-scheduled-1366x768.png"))

    # Started here: the live actions, one of each pair; the timer runs from the start.
    page.get_by_role("button", name="Start call").click()
    page.wait_for_selector("#call-state:text('live')")
    page.wait_for_selector("#desk[data-version]", state="attached")  # the stream's first view
    assert _offers(page) == {"Lock", "Mute all", "End call"}
    assert not page.locator("#deck-form").is_visible()
    began = _timer(page)
    page.wait_for_function(
        "(t) => document.getElementById('call-timer').textContent > t", arg=began
    )
    page.get_by_role("button", name="Lock", exact=True).click()
    page.wait_for_selector("button[data-action=unlock]:visible")
    assert _offers(page) == {"Unlock", "Mute all", "End call"}
    assert page.locator("#lock-state").is_visible()
    page.get_by_role("button", name="Unlock").click()
    page.wait_for_selector("button[data-action=lock]:visible")
    assert _offers(page) == {"Lock", "Mute all", "End call"}

    # A reload keeps the timer on the call's actual start (the call log's), not the load.
    before = _timer(page)
    page.reload()
    page.wait_for_selector("#slide-thumbs img >> nth=3")
    assert _timer(page) >= before and _offers(page) == {"Lock", "Mute all", "End call"}

    # A listener who records what they hear.
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(8000 * 30, dtype=np.int16))
    phone = Baresip(tmp_path / "baresip", silence, user="listener")
    phone.dial(f"sip:{DID[1:]}@127.0.0.1:{server.sip_port}", seconds=26)
    dialled_at = time.monotonic()
    # The CFO, named from the speaker list as he joins (he sends silence).
    speaker = Dialing(
        server.sip_target,
        tmp_path,
        passcode_stream(
            [event.speaker_passcode + "#"], tone=np.zeros(160, np.int16), talk_after=40
        ),
        name="speaker",
        stay_ms=42_000,
        caller=Caller(
            "Boardroom", "room4", f"P-Asserted-Identity: <sip:{SPEAKER['phone']}@c.example>"
        ),
        timeout=60,
    )
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
        assert queued, "the desk shows a queue entry the log does not have"
        pressed_at = datetime.fromisoformat(queued[0]["at"])
        delay = (shown_at - pressed_at).total_seconds()
        assert delay < 1.0, f"*1 reached the desk after {delay:.2f} s"
        entry = page.locator("#queue li").first
        assert "phone *1" in entry.inner_text().lower()
        page.wait_for_selector("#queue li .waited:text('waiting')")
        # The operator names the questioner (name and firm), as the desk then shows them.
        asker = entry.get_attribute("data-participant")
        named = server.api(
            "POST",
            f"/api/events/{event.id}/actions",
            json={"action": "name", "participant_id": asker, "name": QUESTIONER},
        )
        assert named.status_code == 200, named.text
        page.wait_for_selector("#queue li .firm:text('Halvorsen Partners')")
        page.wait_for_selector("#on-air li:has-text('Mark Chen')", timeout=20_000)
        # Mute all gives way to Unmute all once every speaker is muted, and back.
        page.get_by_role("button", name="Mute all").click()
        page.wait_for_selector("button[data-action=unmute_all]:visible")
        assert _offers(page) == {"Lock", "Unmute all", "End call"}
        page.wait_for_selector("#on-air li:has-text('muted')")
        page.get_by_role("button", name="Unmute all").click()
        page.wait_for_selector("button[data-action=mute_all]:visible")

        # While the questioner waits (unheard, on purpose): the keys step through the
        # deck, but not while the operator types.
        page.keyboard.press("n")
        page.wait_for_selector("#slide-now:text('1')")
        page.keyboard.press("ArrowRight")
        page.wait_for_selector("#slide-now:text('2')")
        assert page.locator("#slide-current").get_attribute("alt") == "Slide 2 of 4"
        assert page.locator("#slide-next-image").get_attribute("alt") == "Slide 3 of 4"
        page.fill("#people-q", "nobody")
        page.keyboard.press("n")
        page.keyboard.press("p")
        page.fill("#people-q", "")
        page.locator("#people-q").blur()
        page.keyboard.press("p")
        page.wait_for_selector("#slide-now:text('1')")
        page.keyboard.press("n")
        page.wait_for_selector("#slide-now:text('2')")
        shown = server.api("GET", f"/api/events/{event.id}/deck").json()["current"]
        assert shown == 2, "a key typed into the search box moved the slides"

        # Sixty caption lines: the panel keeps its height and shows the newest.
        caption_box = page.locator("#live-captions-card").bounding_box()
        transcript = layout.event_webcast(server.data_dir, event.id) / TRANSCRIPT
        transcript.parent.mkdir(parents=True, exist_ok=True)
        with transcript.open("a") as worker:
            for n in range(60):
                cue = {
                    "start": n * 3.0,
                    "end": n * 3.0 + 2.5,
                    "speaker": "Mark Chen",
                    "text": f"Revenue for the quarter grew in line {n} with our guidance.",
                }
                worker.write(json.dumps(cue) + "\n")
        page.wait_for_selector("#live-captions li:has-text('line 59 with')")
        assert page.locator("#live-captions-card").bounding_box() == caption_box
        page.wait_for_function(
            """() => { const l = document.getElementById('live-captions');
                       return l.scrollHeight > l.clientHeight
                              && l.scrollHeight - l.scrollTop - l.clientHeight < 8; }"""
        )
        page.screenshot(path=str(tmp_path / "desk-queue-1366x768.png"))

        # Let the questioner "talk" unheard for a while, then give them the floor: O.
        time.sleep(max(0.0, 6.0 - (datetime.now(UTC) - shown_at).total_seconds()))
        closed_until = time.monotonic() - dialled_at
        page.locator("body").press("o")
        opened_at = time.monotonic() - dialled_at
        page.wait_for_selector("#participants td:text('question (line open)')", timeout=5000)
        on_air = page.locator("#on-air li.open-line")
        on_air.wait_for(timeout=5000)
        assert on_air.locator(".name").inner_text() == "Priya Natarajan"
        assert on_air.locator(".firm").inner_text() == "Halvorsen Partners"
        assert "Question" in on_air.locator(".kind").inner_text()
        assert page.locator("#queue li").count() == 0

        # While the line is open: the desk at both sizes, and what axe-core finds.
        page.screenshot(path=str(tmp_path / "desk-on-air-1366x768.png"))
        assert _cut_off(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(tmp_path / "desk-on-air-390x844.png"), full_page=True)
        assert _cut_off(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.set_viewport_size(WIDE)
        findings = _axe(page)
        assert findings == [], "\n".join(findings)

        # The tone must reach the listener for a while before the line closes: C.
        time.sleep(max(0.0, opened_at + 7.0 - (time.monotonic() - dialled_at)))
        page.locator("body").press("c")
        page.wait_for_selector("#on-air li.open-line", state="detached", timeout=5000)
        assert page.locator("#participants td:text('question (line open)')").count() == 0

        phone.wait(timeout=40)
        heard, rate = phone.heard()
    finally:
        phone.stop()
        asked = questioner.result(timeout=60)
    assert asked.ok, asked.output[-2000:]

    # The end: no live action is left, and the timer stops.
    page.get_by_role("button", name="End call").click()
    page.wait_for_selector("#call-state:text('ended')")
    assert _offers(page) == set()
    stopped = _timer(page)
    page.wait_for_timeout(1100)
    assert _timer(page) == stopped
    speaker.result(timeout=60)  # hung up by the end (sipp calls that BYE unexpected)
    assert problems == []

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
    assert "line_open" in kinds and "line_close" in kinds
