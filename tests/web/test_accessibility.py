"""Accessibility in real Chromium: axe-core on every public and console page, and the player
worked with the keyboard alone, captions on by default on the replay.

axe-core comes from npm through scripts/build-static (tests/support/vendor/,
git-ignored); the test injects it into each page, lists every finding and
fails on the serious and critical ones. The pages' policy allows no inline
script, so the browser context bypasses it for the injected engine only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import EventRecord, EventState
from callbridge.store import layout
from callbridge.web import pages
from callbridge.web.media import LIVE_PLAYLIST, REPLAY_DIR
from callbridge.webcast.vod import package_replay
from tests.web.conftest import OPERATOR, PASSWORD, LiveServer
from tests.web.test_browser import make_event
from tests.webcast.test_vod import make_recording

pytestmark = pytest.mark.browser

AXE = Path(__file__).parents[1] / "support" / "vendor" / "axe.min.js"
TODAY = datetime(2026, 11, 6, 15, 0, tzinfo=UTC)
FAILING = ("serious", "critical")
CAPTION = "Good afternoon and welcome to the call"

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ")),
  }));
}"""


@pytest.fixture(autouse=True)
def fixed_clock(live_server: LiveServer) -> Iterator[None]:
    live_server.app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    live_server.app.dependency_overrides.pop(pages.clock, None)


@pytest.fixture
def axe_page(chromium: Any) -> Iterator[Any]:
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail("axe-core is not vendored (run scripts/build-static)")
        pytest.skip("axe-core is not vendored (run scripts/build-static)")
    context = chromium.new_context(
        viewport={"width": 1024, "height": 800}, locale="en-US", bypass_csp=True
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def _event(
    server: LiveServer, state: EventState, codes: tuple[str, str, str], **event: Any
) -> EventRecord:
    record = make_event(
        server,
        passcode=codes[0],
        speaker_passcode=codes[1],
        replay_passcode=codes[2],
        **event,
    )
    steps = {
        EventState.SCHEDULED: [],
        EventState.LIVE: [EventState.LIVE],
        EventState.ENDED: [EventState.LIVE, EventState.ENDED],
    }[state]
    for step in steps:
        record = server.app.state.events.set_state(record.id, step)
    return record


def _replay_on_disk(server: LiveServer, event_id: int) -> None:
    """A real recording, packaged as the replay, with captions."""
    media = server.app.state.webcast_media
    directory = layout.recording_dir(media.data_dir, event_id, "20261105T213000Z")
    directory.mkdir(parents=True)
    package_replay(make_recording(directory), directory / REPLAY_DIR)
    (directory / "captions.vtt").write_text(
        f"WEBVTT\n\n00:00:00.000 --> 00:00:30.000\n<v Speaker 1>{CAPTION}\n"
    )


def _events(server: LiveServer) -> dict[str, EventRecord]:
    upcoming = _event(
        server,
        EventState.SCHEDULED,
        ("1111111", "2222222", "3333"),
        starts_at="2026-12-03T16:30:00",
        replay_until="2026-12-10",
    )
    live = _event(
        server,
        EventState.LIVE,
        ("4444444", "5555555", "6666"),
        starts_at="2026-11-06T09:30:00",
        registration="off",
    )
    (server.app.state.webcast_media.live_dir(live.id)).mkdir(parents=True)
    (server.app.state.webcast_media.live_dir(live.id) / LIVE_PLAYLIST).write_text(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"
    )
    ended = _event(
        server,
        EventState.ENDED,
        ("7777777", "8888888", "9999"),
        registration="off",
        replay_until="2026-11-30",
    )
    _replay_on_disk(server, ended.id)
    return {"upcoming": upcoming, "live": live, "ended": ended}


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    findings: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return findings


def _log_in(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/login?next=/console")
    page.fill("input[name=name]", OPERATOR)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/console")


def test_no_page_has_serious_or_critical_axe_findings(
    axe_page: Any, live_server: LiveServer
) -> None:
    page = axe_page
    events = _events(live_server)
    base = live_server.url
    public = {
        "investor events": "/events",
        "event (announcement)": f"/events/{events['ended'].id}/announcement",
        "registration": f"/events/{events['upcoming'].id}/webcast",
        "login": "/login",
    }
    players = {
        "live player": (f"/events/{events['live'].id}/webcast", "live"),
        "replay player": (f"/events/{events['ended'].id}/webcast", "replay"),
    }
    console = {
        "console": "/console",
        "moderator": f"/console/events/{events['live'].id}",
        "engagement report": f"/console/events/{events['ended'].id}/report",
        "account": "/console/account",
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for name, path in public.items():
        page.goto(base + path)
        found[name] = _axe(page)
    for name, (path, playing) in players.items():
        page.goto(base + path)
        if playing == "replay":
            page.click("#replay-start")  # offered, never started by itself
        page.wait_for_function(
            f"() => document.getElementById('webcast').dataset.playing === '{playing}'"
        )
        found[name] = _axe(page)
    _log_in(page, live_server)
    for name, path in console.items():
        page.goto(base + path)
        found[name] = _axe(page)

    report = [
        f"{name}: [{f['impact']}] {f['id']}: {f['help']} ({', '.join(f['nodes'])})"
        for name, findings in found.items()
        for f in findings
    ]
    print("\naxe-core findings:\n" + ("\n".join(report) or "none"))
    failing = [line for line in report if any(f"[{impact}]" in line for impact in FAILING)]
    assert failing == [], "\n".join(failing)


def _tab_to(page: Any, element_id: str) -> None:
    """Press Tab until ``element_id`` has the focus, as a keyboard user gets there."""
    for _ in range(40):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} cannot be reached with Tab")


def _media(page: Any, prop: str) -> Any:
    return page.evaluate(f"document.getElementById('media').{prop}")


def _wait_pressed(page: Any, element_id: str, value: str) -> None:
    """Wait until the toggle button says ``aria-pressed=value`` (it fails after the timeout)."""
    page.wait_for_function(
        "([id, value]) => document.getElementById(id).getAttribute('aria-pressed') === value",
        arg=[element_id, value],
    )


def test_the_replay_player_works_from_the_keyboard_with_captions_on(
    axe_page: Any, live_server: LiveServer
) -> None:
    page = axe_page
    ended = _event(
        live_server,
        EventState.ENDED,
        ("7777777", "8888888", "9999"),
        registration="off",
        replay_until="2026-11-30",
    )
    _replay_on_disk(live_server, ended.id)
    page.goto(f"{live_server.url}/events/{ended.id}/webcast")
    # The replay is offered, and played from the keyboard.
    page.wait_for_selector("#replay-start")
    _tab_to(page, "replay-start")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('webcast').dataset.playing === 'replay'")
    page.wait_for_function("() => document.getElementById('media').currentTime > 0.5")
    # Captions are on without asking: the cue shows as the replay plays.
    page.wait_for_function(
        "(text) => document.getElementById('captions').textContent.includes(text)", arg=CAPTION
    )
    toggle = page.locator("#captions-toggle")
    assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "true"

    _tab_to(page, "play")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('media').paused")
    _wait_pressed(page, "play", "false")
    assert page.locator("#play").inner_text() == "Play"
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.getElementById('media').paused")
    _wait_pressed(page, "play", "true")
    assert page.locator("#play").inner_text() == "Pause"
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('media').paused")
    _wait_pressed(page, "play", "false")

    _tab_to(page, "captions-toggle")
    page.keyboard.press("Space")
    _wait_pressed(page, "captions-toggle", "false")
    assert not page.locator("#captions").is_visible()
    page.keyboard.press("Enter")
    _wait_pressed(page, "captions-toggle", "true")

    _tab_to(page, "volume")
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    assert _media(page, "volume") == pytest.approx(0.8)

    _tab_to(page, "seek")
    # Paused, the slider sits on the whole second played; each arrow moves it one more.
    start = int(page.evaluate("document.getElementById('seek').value"))
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(to) => Math.abs(document.getElementById('media').currentTime - to) < 0.5", arg=start + 5
    )
    page.keyboard.press("Home")
    page.wait_for_function("() => document.getElementById('media').currentTime < 0.5")
    assert _media(page, "paused") is True  # seeking does not start it
