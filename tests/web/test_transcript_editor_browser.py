"""The transcript editor in real Chromium: an editor hears a segment, corrects a word and a
speaker, marks a question, publishes; the replay page and the TXT download then show the
correction. Screenshots of the editor at 1366×768 and 390×844 go to $CALLBRIDGE_SCREENSHOTS
(or the tmp_path), checked by axe-core at both sizes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import EventRecord, EventState
from callbridge.store import layout
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.transcribe import write_transcript
from callbridge.web import pages
from callbridge.web.media import REPLAY_DIR
from callbridge.webcast.vod import package_replay
from tests.web.conftest import LiveServer
from tests.web.test_accessibility import AXE, RUN_AXE
from tests.web.test_browser import make_event, no_horizontal_overflow
from tests.web.test_editor import PHONE, WATCH_CSP, WIDE, _csp, _log_in, _shots
from tests.webcast.test_vod import make_recording

pytestmark = pytest.mark.browser

TODAY = datetime(2026, 11, 6, 15, 0, tzinfo=UTC)
CFO = "Jane Roe, Chief Financial Officer"
SEGMENTS = [
    (0.5, "Operator", "Good afternoon and welcome to the Northwind Biologics third quarter call."),
    (2.5, "Operator", "I will now turn the call over to Mark Chen, Chief Executive Officer."),
    (
        4.0,
        "Mark Chen, Chief Executive Officer",
        "Thank you, operator, and thanks to all of you for joining us today.",
    ),
    (6.5, "Speaker 1", "Net sales of zylo prin grew to $42 million, up 12% from a year ago."),
    (
        9.0,
        "Speaker 1",
        "Zylo prin is now approved in 12 countries, and we expect two more by fiscal 2027.",
    ),
    (11.5, "Speaker 1", "Operating expenses were $31 million, in line with our guidance."),
    (13.5, "Operator", "We will now begin the question-and-answer session."),
    (15.0, "Speaker 2", "Thanks. What drove the growth in Europe this quarter?"),
    (17.0, "Speaker 1", "Mostly zylo prin launches in Germany and France."),
]
TRANSCRIPT = Transcript(
    segments=[
        TranscriptSegment(start, start + 1.8, speaker, text) for start, speaker, text in SEGMENTS
    ],
    engine="moonshine-base",
    duration_s=20.0,
    elapsed_s=3.0,
    qa_start=13.4,
)


@pytest.fixture(autouse=True)
def fixed_clock(live_server: LiveServer) -> Iterator[None]:
    live_server.app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    live_server.app.dependency_overrides.pop(pages.clock, None)


@pytest.fixture
def editor(chromium: Any) -> Iterator[tuple[Any, list[str]]]:
    context = chromium.new_context(viewport=WIDE, locale="en-US", accept_downloads=True)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page, errors
    finally:
        context.close()


def ended_call(server: LiveServer, tmp_path: Path) -> EventRecord:
    record = make_event(
        server,
        title="Third Quarter Fiscal Year 2026 Financial Results",
        registration="off",
        replay_until="2026-11-30",
        speakers=[
            {"name": "Mark Chen", "title": "Chief Executive Officer"},
            {"name": "Jane Roe", "title": "Chief Financial Officer"},
        ],
    )
    server.app.state.events.set_state(record.id, EventState.LIVE)
    server.app.state.events.set_state(record.id, EventState.ENDED)
    source = tmp_path / "source"
    source.mkdir()
    package_replay(make_recording(source), source / "hls")
    directory = layout.recording_dir(
        server.app.state.webcast_media.data_dir, record.id, "20261105T213000Z"
    )
    directory.mkdir(parents=True)
    (source / "hls").rename(directory / REPLAY_DIR)
    (source / "recording.m4a").rename(directory / "recording.m4a")
    write_transcript(directory, TRANSCRIPT)
    return record


def _axe(page: Any) -> list[str]:
    if not AXE.is_file():
        return []
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    findings: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [
        f"[{f['impact']}] {f['id']}: {f['help']} ({', '.join(f['nodes'])})"
        for f in findings
        if f["impact"] in ("serious", "critical")
    ]


def test_an_editor_corrects_a_word_and_a_speaker_publishes_and_listeners_see_it(
    editor: tuple[Any, list[str]], live_server: LiveServer, tmp_path: Path
) -> None:
    page, errors = editor
    shots = _shots(tmp_path)
    record = ended_call(live_server, tmp_path)
    _log_in(page, live_server, f"/console/events/{record.id}/transcript")

    # The audio at that point is one click away.
    page.get_by_role("button", name="Play from 0:06").click()
    page.wait_for_function(
        "() => { const a = document.getElementById('te-audio');"
        " return !a.paused && a.currentTime >= 6.4; }",
        timeout=15_000,
    )
    page.wait_for_selector("#seg-3.playing")  # the segment heard is the one shown
    page.evaluate("document.getElementById('te-audio').pause()")

    # A word and a speaker, in two segments; a question marked with who asks it.
    page.fill("#tx-3", "Net sales of Zyloprin grew to $42 million, up 12% from a year ago.")
    page.fill("#sp-3", CFO)
    page.press("#sp-3", "Tab")
    # The rest of the turn (up to the operator) may take the new speaker at once.
    page.get_by_role("button", name="Also the next 2 segments of Speaker 1").click()
    assert page.input_value("#sp-5") == CFO and page.input_value("#sp-6") == "Operator"
    page.fill(
        "#tx-4", "Zyloprin is now approved in 12 countries, and we expect two more by fiscal 2027."
    )
    page.select_option("#mk-7", "question")
    page.fill("#ml-7", "Ann Lee, Acme Securities")
    assert page.locator("#seg-3.dirty").count() == 1
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_function(
        "() => document.getElementById('te-state').textContent.startsWith('Draft saved')"
    )
    assert page.locator("#seg-3.corrected").count() == 1
    # Corrected the same way twice: offered for the glossary.
    offer = page.locator("#te-offers li[data-term='Zyloprin']")
    assert "corrected 2×" in offer.inner_text()

    for size, tag in ((WIDE, "1366x768"), (PHONE, "390x844")):
        page.set_viewport_size(size)
        page.evaluate("window.scrollTo(0, 0)")
        assert no_horizontal_overflow(page), tag
        page.screenshot(path=str(shots / f"transcript-editor-{tag}.png"))
        page.screenshot(path=str(shots / f"transcript-editor-{tag}-full.png"), full_page=True)
        assert _axe(page) == [], tag
    page.set_viewport_size(WIDE)

    offer.get_by_role("button", name="Add").click()
    page.wait_for_function(
        "() => document.getElementById('te-glossary-list').textContent.includes('Zyloprin')"
    )
    assert "Zyloprin" in live_server.app.state.events.get(record.id).glossary

    page.get_by_role("button", name="Publish").click()
    page.wait_for_function(
        "() => document.getElementById('te-state').textContent.startsWith('Published version 1')"
    )

    # The replay page shows the published version ...
    page.goto(f"{live_server.url}/events/{record.id}/webcast")
    turns = page.locator("ol.turns")
    turns.wait_for()
    said = turns.inner_text()
    assert "Net sales of Zyloprin grew to $42 million" in said
    assert "Net sales of zylo prin" not in said
    assert CFO in said and "Speaker 1" in said  # the last answer was not relabelled
    assert "Question from Ann Lee, Acme Securities" in said
    assert "Reviewed by Northwind" in page.locator(".transcript-note").inner_text()
    page.screenshot(path=str(shots / "transcript-published-replay-1366x768.png"), full_page=True)

    # ... and so does the text download.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the transcript (text)").click()
    text = Path(download.value.path()).read_text()
    assert text.startswith("Northwind Biologics, Inc.: Third Quarter Fiscal Year 2026")
    assert f"[0:06] {CFO}\nNet sales of Zyloprin grew to $42 million" in text
    assert "Question from Ann Lee, Acme Securities" in text

    assert _csp(page) == []
    assert errors == []
