"""The key-figures table beside the replay, in real Chromium: each row plays the replay from
the moment its figure was said, by a click on the page or by a link to ``#t=<seconds>``.

Screenshots of the replay page with the table, at 1366x768 and 390x844, are kept under the
test's tmp_path; axe-core reads the page at both sizes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import EventState
from callbridge.store import layout
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.transcribe import write_transcript
from callbridge.web import pages
from callbridge.web.media import REPLAY_DIR
from callbridge.webcast.vod import package_replay
from tests.web.conftest import LiveServer
from tests.web.test_accessibility import AXE, FAILING, RUN_AXE
from tests.web.test_browser import make_event, no_horizontal_overflow, watch_console
from tests.webcast.test_vod import make_recording

pytestmark = pytest.mark.browser

TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
WIDE = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# Within the 20 s test recording.
TRANSCRIPT = Transcript(
    segments=[
        TranscriptSegment(0.5, 3.0, "Operator", "Welcome to the Northwind Q3 2026 earnings call."),
        TranscriptSegment(
            3.5, 8.0, "Jane Roe, CFO", "Revenue for the quarter was $42 million, up 12%."
        ),
        TranscriptSegment(8.5, 11.0, "Jane Roe, CFO", "Gross margin was 61.4%."),
        TranscriptSegment(
            12.0,
            16.0,
            "Jane Roe, CFO",
            "For fiscal 2027 we expect revenue between $190 million and $200 million.",
        ),
        TranscriptSegment(16.5, 19.0, "Ana Lyst, Acme Capital", "Why did churn fall to 2%?"),
    ],
    engine="test",
    duration_s=20.0,
    elapsed_s=1.0,
)
# Where the replay's position landed, read as it lands (it plays on after).
WATCH_SEEKS = """() => { const media = document.getElementById('media'); window.seekedTo = null;
    media.addEventListener('seeked', () => { window.seekedTo = media.currentTime; }); }"""
LANDED = "(at) => window.seekedTo !== null && Math.abs(window.seekedTo - at) < 0.5"


@pytest.fixture(autouse=True)
def fixed_clock(live_server: LiveServer) -> Iterator[None]:
    live_server.app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    live_server.app.dependency_overrides.pop(pages.clock, None)


@pytest.fixture
def listener(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=WIDE, locale="en-US")
    try:
        yield context.new_page()
    finally:
        context.close()


def _ended_call(server: LiveServer, tmp_path: Path) -> int:
    record = make_event(
        server,
        title="Third Quarter 2026 Results",
        starts_at="2026-11-25T09:00:00",
        registration="off",
        replay_until="2026-12-10",
    )
    server.app.state.events.set_state(record.id, EventState.ENDED)
    source = tmp_path / "source"
    source.mkdir()
    package_replay(make_recording(source), source / "hls")
    media = server.app.state.webcast_media
    directory = layout.recording_dir(media.data_dir, record.id, "20261125T140000Z")
    directory.mkdir(parents=True)
    shutil.copytree(source / "hls", directory / REPLAY_DIR)
    shutil.copy(source / "recording.m4a", directory / "recording.m4a")
    write_transcript(directory, TRANSCRIPT)
    return record.id


def _axe(page: Any) -> list[str]:
    if not AXE.is_file():
        return []  # axe-core is not vendored here (scripts/build-static): screenshots only
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    findings: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [
        f"[{f['impact']}] {f['id']}: {f['help']} ({', '.join(f['nodes'])})"
        for f in findings
        if f["impact"] in FAILING
    ]


def test_a_key_figure_plays_the_replay_from_the_moment_it_was_said(
    listener: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    page = listener
    errors = watch_console(page)
    event_id = _ended_call(live_server, tmp_path)
    url = f"{live_server.url}/events/{event_id}/webcast"
    page.goto(url)
    offer = page.get_by_role("button", name="Play the replay")
    offer.wait_for(timeout=15_000)
    rows = page.locator("#key-figures tbody tr")
    assert [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())] == [
        "Revenue",
        "Revenue growth",
        "Gross margin",
        "Revenue guidance",
        "Churn",
    ]
    guidance = rows.nth(3)
    assert guidance.locator("td").nth(2).inner_text() == "$190 million to $200 million"
    assert guidance.locator("td").nth(3).inner_text() == "fiscal 2027"

    # Before the replay plays: a row's time starts it from that moment.
    page.evaluate(WATCH_SEEKS)
    guidance.locator("a.ts").click()
    page.wait_for_function(LANDED, arg=12.0, timeout=20_000)
    assert page.evaluate("document.getElementById('webcast').dataset.playing") == "replay"
    # While it plays: another row seeks it in place, the address unchanged.
    page.evaluate("window.seekedTo = null")
    rows.nth(2).locator("a.ts").click()
    page.wait_for_function(LANDED, arg=8.5, timeout=20_000)
    assert page.url == url

    shots = tmp_path / "screenshots"
    shots.mkdir()
    failing: list[str] = []
    for size in (WIDE, PHONE):
        page.set_viewport_size(size)
        page.locator("#key-figures").scroll_into_view_if_needed()
        name = f"key-figures-{size['width']}x{size['height']}"
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        page.screenshot(path=str(shots / f"{name}-view.png"))
        assert no_horizontal_overflow(page), name
        failing.extend(f"{name}: {line}" for line in _axe(page))
    print("screenshots:", shots)
    assert failing == [], "\n".join(failing)
    assert errors == []


def test_a_link_to_a_moment_plays_the_replay_from_there(
    listener: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    """A key figure's link opened apart: the page at #t=12 plays from 0:12 when played."""
    page = listener
    event_id = _ended_call(live_server, tmp_path)
    page.goto(f"{live_server.url}/events/{event_id}/webcast#t=12")
    offer = page.get_by_role("button", name="Play the replay")
    offer.wait_for(timeout=15_000)
    page.evaluate(WATCH_SEEKS)
    offer.click()
    page.wait_for_function(LANDED, arg=12.0, timeout=20_000)
    # A new fragment while it plays seeks it there.
    page.evaluate("window.seekedTo = null; location.hash = '#t=3'")
    page.wait_for_function(LANDED, arg=3.0, timeout=20_000)
