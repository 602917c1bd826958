"""The replay page's transcript: a paragraph per speaker turn, searchable, figures as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import Markup

from callbridge.events.schema import EventState
from callbridge.store import layout
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.pieces import INAUDIBLE
from callbridge.transcript.transcribe import write_transcript
from callbridge.transcript.turns import clock
from callbridge.web import pages
from callbridge.web.listener_page import SegmentView, paragraphs
from callbridge.web.media import REPLAY_DIR, REPLAY_PLAYLIST, REPLAY_READY, WebcastMedia
from tests.web.test_pages import make_event

TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TRANSCRIPT = Transcript(
    segments=[
        TranscriptSegment(1.0, 4.0, "Operator", "Welcome to the Northwind call."),
        TranscriptSegment(4.5, 6.0, "Operator", "Please go ahead."),
        TranscriptSegment(7.0, 11.0, "Jane Roe", "Revenue grew to $42 million, up 12%."),
        TranscriptSegment(11.5, 14.0, "Jane Roe", INAUDIBLE),
        TranscriptSegment(14.2, 16.0, "Jane Roe", "Net loss was $0.31 per share."),
        TranscriptSegment(75.0, 78.0, "Speaker 1", "What drove <revenue>?"),
    ],
    engine="fake",
    duration_s=80.0,
    elapsed_s=1.0,
)


@pytest.fixture(autouse=True)
def fixed_clock(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    app.dependency_overrides.pop(pages.clock, None)


def replay_page(client: TestClient, query: str = "") -> str:
    record = make_event(
        client, title="Q3", state=EventState.ENDED, registration="off", replay_until="2026-11-30"
    )
    media: WebcastMedia = client.app.state.webcast_media  # type: ignore[attr-defined]
    directory = layout.recording_dir(media.data_dir, record.id, "20261105T213000Z")
    (directory / REPLAY_DIR).mkdir(parents=True)
    (directory / REPLAY_DIR / REPLAY_PLAYLIST).write_text("#EXTM3U\n")
    (directory / REPLAY_DIR / REPLAY_READY).write_text("{}")
    write_transcript(directory, TRANSCRIPT)
    suffix = f"?q={query}" if query else ""
    response = client.get(f"/events/{record.id}/webcast{suffix}")
    assert response.status_code == 200
    return response.text


def turns(page: str) -> list[str]:
    """Each turn's text as a reader sees it: tags dropped, spaces collapsed."""
    found = re.findall(r'<li class="turn">(.*?)</li>', page, re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", turn).split()) for turn in found]


def test_the_transcript_reads_as_turns_by_speaker(client: TestClient) -> None:
    shown = turns(replay_page(client))
    assert shown == [
        "0:01 Operator Welcome to the Northwind call. Please go ahead.",
        "0:07 Jane Roe Revenue grew to $42 million, up 12%. [inaudible 0:11–0:14] "
        "Net loss was $0.31 per share.",
        "1:15 Speaker 1 What drove &lt;revenue&gt;?",
    ]


def test_each_sentence_seeks_the_player_and_search_marks_its_hits(client: TestClient) -> None:
    page = replay_page(client, "revenue")
    assert 'data-seek="7.00"' in page and 'data-seek="14.20"' in page
    assert "2 matches for “revenue”" in page
    hits = re.findall(r'<span id="t(\d+)" class="text hit"', page)
    assert hits == ["2", "5"]
    assert "<mark>Revenue</mark> grew" in page and "&lt;<mark>revenue</mark>&gt;" in page


def test_a_long_turn_is_cut_into_paragraphs_at_its_pauses_each_led_by_its_time() -> None:
    said = [(0.0, 4.0), (4.2, 8.0), (11.0, 14.0), (14.1, 15.0)]  # a 3 s pause after 8.0
    items = [
        (n, SegmentView(start, clock(start), None, Markup(f"Sentence {n}.")))
        for n, (start, _) in enumerate(said)
    ]
    ends = {n: end for n, (_, end) in enumerate(said)}
    found = paragraphs(items, ends)
    assert [[n for n, _ in p.segments] for p in found] == [[0, 1], [2, 3]]
    assert [p.clock for p in found] == ["0:00", "0:11"]
    # Past the length limit a paragraph ends at the next segment, pause or not.
    assert [len(p.segments) for p in paragraphs(items, ends, chars=20)] == [2, 2]
    assert [len(p.segments) for p in paragraphs(items, ends, pause_s=60, chars=10)] == [1, 1, 1, 1]
