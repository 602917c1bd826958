"""The investor's webcast page through a whole call, in real Chromium, without a reload:
registered before the call, live (the live styling, captions labelled automatic, the slides
beside the player), ended (the replay offered, never started by itself), the replay (its
duration, its speed, the transcript in speaker turns whose times seek it, the downloads).

At each stage the page is read at 1366x768 and at 390x844 by axe-core (no serious or
critical finding), and its screenshots are kept under the test's tmp_path. The page runs
under its own policy (no ``bypass_csp``; axe-core goes in through the DevTools protocol,
which the policy does not govern), and no policy violation may reach the console: hls.js
used to add a ``data:`` text track per rendition, which the policy refused.

The live and replay files are laid on disk as the media plane leaves them: the live one is
the replay's segments under a live playlist, with the live captions' subtitle rendition.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import EventRecord, EventState
from callbridge.slides.deck import render_deck
from callbridge.store import layout
from callbridge.store.slides import SlideLog
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.transcribe import write_transcript
from callbridge.web import pages
from callbridge.web.media import REPLAY_DIR
from callbridge.webcast.subtitles import MASTER, SUBTITLES, master_playlist
from callbridge.webcast.vod import package_replay
from tests.web.conftest import LiveServer
from tests.web.test_accessibility import AXE, FAILING, RUN_AXE
from tests.web.test_browser import make_event, no_horizontal_overflow, watch_console
from tests.webcast.test_vod import make_recording

pytestmark = pytest.mark.browser

TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
WIDE = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
LIVE_CAPTION = "Welcome to the Northwind third quarter call"
DECK_HTML = "".join(
    '<section style="page-break-after: always; height: 660px; font: 40px sans-serif;'
    ' padding: 60px; box-sizing: border-box; border-top: 24px solid #14213d">'
    '<h1 style="font-size: 64px; margin: 0 0 30px">Northwind Q3 2026</h1>'
    f"<h2>{title}</h2><p>Revenue grew 12% to $42 million.</p></section>"
    for title in ("Highlights", "Outlook")
)
TRANSCRIPT = Transcript(
    segments=[
        TranscriptSegment(0.5, 3.0, "Operator", "Good afternoon and welcome to the call."),
        TranscriptSegment(3.5, 6.0, "Jane Roe, Chief Financial Officer", "Thank you."),
        TranscriptSegment(6.2, 9.5, "Jane Roe, Chief Financial Officer", "Revenue grew 12%."),
        TranscriptSegment(13.0, 16.0, "Jane Roe, Chief Financial Officer", "Net loss narrowed."),
        TranscriptSegment(16.5, 19.0, "Analyst", "What drove the margin?"),
    ],
    engine="fake",
    duration_s=20.0,
    elapsed_s=1.0,
)
# Records every policy violation the page meets, before any of its own scripts run.
WATCH_CSP = """window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});"""


@pytest.fixture(autouse=True)
def fixed_clock(live_server: LiveServer) -> Iterator[None]:
    live_server.app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    live_server.app.dependency_overrides.pop(pages.clock, None)


@pytest.fixture
def listener(chromium: Any) -> Iterator[Any]:
    if not AXE.is_file():
        pytest.skip("axe-core is not vendored (run scripts/build-static)")
    context = chromium.new_context(viewport=WIDE, locale="en-US")
    context.add_init_script(WATCH_CSP)
    try:
        yield context.new_page()
    finally:
        context.close()


def _axe(page: Any) -> list[str]:
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    findings: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [
        f"[{f['impact']}] {f['id']}: {f['help']} ({', '.join(f['nodes'])})"
        for f in findings
        if f["impact"] in FAILING
    ]


def _look(page: Any, shots: Path, stage: str, failing: list[str]) -> None:
    """Screenshots at both sizes, axe-core at both; back to the wide screen."""
    for size in (WIDE, PHONE):
        page.set_viewport_size(size)
        name = f"{stage}-{size['width']}x{size['height']}"
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert no_horizontal_overflow(page), name
        failing.extend(f"{name}: {line}" for line in _axe(page))
    page.set_viewport_size(WIDE)


def _deck(server: LiveServer, chromium: Any, event_id: int) -> None:
    maker = chromium.new_page()
    maker.set_content(DECK_HTML)
    data = maker.pdf(width="1280px", height="720px")
    maker.close()
    folder = layout.deck_dir(server.app.state.webcast_media.data_dir, event_id)
    render_deck(data, folder, "Northwind Q3 2026.pdf", TODAY)


def _go_live(server: LiveServer, record: EventRecord, replay_files: Path) -> None:
    """The call is live: its playlist names the replay's segments, with live captions."""
    server.app.state.events.set_state(record.id, EventState.LIVE)
    live = server.app.state.webcast_media.live_dir(record.id)
    live.mkdir(parents=True)
    lines = []
    started = datetime.now(UTC) - timedelta(seconds=30)
    for line in (replay_files / "index.m3u8").read_text().splitlines():
        if line.startswith(("#EXT-X-PLAYLIST-TYPE", "#EXT-X-ENDLIST")):
            continue
        lines.append(line)
        if line.startswith("#EXT-X-MAP"):
            stamp = started.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp}")
    for item in replay_files.iterdir():
        if item.suffix in (".mp4", ".m4s"):
            shutil.copy(item, live / item.name)
    (live / "index.m3u8").write_text("\n".join(lines) + "\n")
    (live / SUBTITLES).write_text(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:21\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:21.0,\nsub0.vtt\n"
    )
    (live / "sub0.vtt").write_text(
        "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n"
        f"00:00:00.000 --> 00:00:21.000\n<v Operator>{LIVE_CAPTION}\n"
    )
    (live / MASTER).write_text(master_playlist())


def _end(server: LiveServer, record: EventRecord, replay_files: Path) -> None:
    """The call ends; its replay, captions and transcript are made."""
    server.app.state.events.set_state(record.id, EventState.ENDED)
    media = server.app.state.webcast_media
    directory = layout.recording_dir(media.data_dir, record.id, "20261125T150000Z")
    directory.mkdir(parents=True)
    shutil.copytree(replay_files, directory / REPLAY_DIR)
    shutil.copy(replay_files.parent / "recording.m4a", directory / "recording.m4a")
    write_transcript(directory, TRANSCRIPT)


def _playing(page: Any, kind: str) -> None:
    page.wait_for_function(
        "(kind) => document.getElementById('webcast').dataset.playing === kind"
        " && document.getElementById('media').currentTime > 0.3",
        arg=kind,
        timeout=20_000,
    )


def test_a_listener_follows_the_call_from_scheduled_to_the_replay_without_a_reload(
    listener: Any, chromium: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    page = listener
    errors = watch_console(page)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    failing: list[str] = []
    record = make_event(
        live_server,
        title="Third Quarter 2026 Results",
        starts_at="2026-11-25T10:05:00",  # 15:05 UTC: the page asks every 2 s
        registration="required",
        replay_until="2026-12-10",
    )
    _deck(live_server, chromium, record.id)
    # The moderator will show the second slide as the call begins (the page learns of it
    # with its first look at the slides, rather than five seconds later).
    slide_at = datetime.now(UTC) - timedelta(seconds=25)
    SlideLog(live_server.app.state.events.database).show(record.id, 2, slide_at, "dana")
    source = tmp_path / "source"
    source.mkdir()
    package_replay(make_recording(source), source / "hls")

    # Before the call: the registration form says what is kept and why.
    page.goto(f"{live_server.url}/events/{record.id}/webcast")
    privacy = page.locator("form.register .privacy")
    assert "keeps the name, firm and email" in privacy.inner_text()
    assert "Northwind" in privacy.inner_text()
    _look(page, shots, "1-register", failing)
    page.fill("#reg-name", "Ada Analyst")
    page.fill("#reg-firm", "Acme Capital")
    page.fill("#reg-email", "ada@acme.example")
    page.click("form.register button[type=submit]")
    page.wait_for_selector("#ask")
    # A question before the call is not sent, and says so.
    page.fill("#ask-text", "Will you update the outlook?")
    page.click("#ask button[type=submit]")
    page.wait_for_selector("#ask-status:has-text('Not sent')")
    assert page.get_by_role("link", name="Download the slides (PDF, 2 pages)").is_visible()
    _look(page, shots, "2-scheduled", failing)

    # The call goes live: the page follows without a reload.
    _go_live(live_server, record, source / "hls")
    page.wait_for_selector("#webcast.is-live header .badge.live", timeout=15_000)
    _playing(page, "live")
    assert page.locator("#ask-status").inner_text() == ""  # the stale "Not sent" is gone
    page.wait_for_function(
        "(text) => document.getElementById('captions').textContent.includes(text)",
        arg=LIVE_CAPTION,
        timeout=30_000,
    )
    assert page.locator("#captions-area").is_visible()
    assert page.locator("#captions .who").inner_text().strip() == "Operator:"
    assert page.locator(".captions-label").inner_text().lower() == "automatic captions"
    page.wait_for_function("() => document.getElementById('slides').dataset.slide === '2'")
    assert not page.locator("#seek").is_visible() and not page.locator("#speed").is_visible()
    # On a wide screen the slides are beside the player; on a phone, below it.
    player = page.locator("#player").bounding_box()
    slides = page.locator("#slides").bounding_box()
    assert slides["x"] + slides["width"] <= player["x"]
    _look(page, shots, "3-live", failing)
    page.set_viewport_size(PHONE)
    player = page.locator("#player").bounding_box()
    slides = page.locator("#slides").bounding_box()
    assert slides["y"] >= player["y"] + player["height"]
    page.set_viewport_size(WIDE)

    # The call ends: the page says so and offers the replay; it does not play it.
    _end(live_server, record, source / "hls")
    page.wait_for_selector("#webcast-status:has-text('The call has ended')", timeout=15_000)
    offer = page.get_by_role("button", name="Play the replay")
    offer.wait_for(timeout=15_000)
    assert page.evaluate("document.getElementById('media').paused")
    assert not page.evaluate("document.getElementById('webcast').dataset.playing")
    assert page.locator("#webcast.is-live, header .badge.live").count() == 0
    # The transcript and the downloads come with the offer, still without a reload.
    page.wait_for_selector(".transcript .turn")
    # And the key figures beside the player ("Revenue grew 12%."), each time a link into it.
    page.wait_for_selector("#key-figures a.ts[href='#t=6']")
    downloads = page.locator("#downloads-card")
    for name in ("the slides", "the recording (M4A)", "the transcript (text)", "(Word)"):
        assert downloads.get_by_role("link", name=name).is_visible(), name
    _look(page, shots, "4-ended", failing)

    # The listener plays the replay: elapsed / duration, and a speed of their choosing.
    offer.click()
    _playing(page, "replay")
    page.wait_for_selector("#duration-part:not([hidden])")
    assert page.locator("#duration").inner_text() == "0:20"
    page.select_option("#speed", "1.5")
    assert page.evaluate("document.getElementById('media').playbackRate") == 1.5
    # The transcript is in speaker turns, each time a link that seeks the replay.
    turns = page.locator(".transcript .turn")
    assert [turns.nth(i).locator(".speaker").inner_text() for i in range(turns.count())] == [
        "Operator",
        "Jane Roe, Chief Financial Officer",
        "Analyst",
    ]
    jane = turns.nth(1)
    assert jane.locator("p.said").count() == 2  # a pause of 3.5 s starts a paragraph
    # Where the seek landed, read as it lands (the replay plays on at 1.5× after it).
    page.evaluate(
        """() => { const media = document.getElementById('media'); window.seekedTo = null;
            media.addEventListener('seeked', () => { window.seekedTo = media.currentTime; }); }"""
    )
    jane.locator("p.said").nth(1).locator("a.ts").click()
    page.wait_for_function("() => window.seekedTo !== null && Math.abs(window.seekedTo - 13) < 0.5")
    _look(page, shots, "5-replay", failing)

    print("screenshots:", shots)
    assert failing == [], "\n".join(failing)
    assert page.evaluate("window.cspViolations") == []
    assert [e for e in errors if "Content Security Policy" in e] == []
