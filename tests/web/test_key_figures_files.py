"""The key figures on the replay page and as JSON and CSV, through the in-process client."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.events.schema import EventRecord, EventState
from callbridge.store import layout
from callbridge.transcript.key_figures import CSV_HEAD
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.transcribe import write_transcript
from callbridge.web import pages
from callbridge.web.media import REPLAY_DIR, REPLAY_PLAYLIST, REPLAY_READY, WebcastMedia
from tests.web.test_pages import make_event

_CODES = itertools.count(10)
CELL = r"<td[^>]*>(.*?)</td>"
TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
CALL = Transcript(
    segments=[
        TranscriptSegment(1.0, 5.0, "Operator", "Welcome to the Northwind Q3 2026 call."),
        TranscriptSegment(
            7.0, 12.0, "Jane Roe", "Revenue for the quarter was $42 million, up 12%."
        ),
        TranscriptSegment(
            12.5, 16.0, "Jane Roe", "For Q4 2026 we expect revenue of $45 million to $47 million."
        ),
        TranscriptSegment(75.0, 80.0, "Ana Lyst", "Was gross margin 61.4% <really>?"),
    ],
    engine="test",
    duration_s=80.0,
    elapsed_s=1.0,
)


@pytest.fixture(autouse=True)
def fixed_clock(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    app.dependency_overrides.pop(pages.clock, None)


def ended_call(
    client: TestClient, transcript: Transcript | None = CALL, **event: str
) -> EventRecord:
    """An ended call with its replay on disk (and its transcript, unless None)."""
    event.setdefault("registration", "off")
    event.setdefault("replay_until", "2026-11-30")
    n = next(_CODES)
    codes = (f"80247{n:02d}", f"55501{n:02d}", f"44{n:02d}")
    record = make_event(client, title="Q3", state=EventState.ENDED, codes=codes, **event)
    media: WebcastMedia = client.app.state.webcast_media  # type: ignore[attr-defined]
    directory = layout.recording_dir(media.data_dir, record.id, "20261125T143000Z")
    (directory / REPLAY_DIR).mkdir(parents=True)
    (directory / REPLAY_DIR / REPLAY_PLAYLIST).write_text("#EXTM3U\n")
    (directory / REPLAY_DIR / REPLAY_READY).write_text("{}")
    if transcript is not None:
        write_transcript(directory, transcript)
    return record


def test_the_replay_page_shows_the_key_figures_each_linked_to_its_moment(
    client: TestClient,
) -> None:
    record = ended_call(client)
    page = client.get(f"/events/{record.id}/webcast").text
    section = page[page.index('id="key-figures"') :]
    section = section[: section.index("</section>")]
    rows = [
        [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(CELL, row)]
        for row in re.findall(r"<tr>(<td>.*?)</tr>", section, re.DOTALL)
    ]
    assert rows == [
        ["0:07", "Revenue", "$42 million", "Q3 2026"],
        ["0:07", "Revenue growth", "12%", "Q3 2026"],
        ["0:12", "Revenue guidance", "$45 million to $47 million", "Q4 2026"],
        ["1:15", "Gross margin", "61.4%", ""],
    ]
    assert section.count('href="#t=7"') == 2 and 'data-seek="12.50"' in section
    assert 'title="Was gross margin 61.4% &lt;really&gt;?"' in section
    assert f'href="/webcast/{record.id}/key-figures.csv"' in section


def test_no_table_without_a_transcript_and_none_for_a_call_without_figures(
    client: TestClient,
) -> None:
    record = ended_call(client, transcript=None)
    assert 'id="key-figures"' not in client.get(f"/events/{record.id}/webcast").text
    assert client.get(f"/webcast/{record.id}/key-figures.json").status_code == 404
    quiet = Transcript([TranscriptSegment(0.0, 2.0, "Operator", "Welcome.")], "test", 2.0, 1.0)
    record = ended_call(client, transcript=quiet)
    assert 'id="key-figures"' not in client.get(f"/events/{record.id}/webcast").text
    answer = client.get(f"/webcast/{record.id}/key-figures.json")
    assert answer.status_code == 200 and answer.json()["key_figures"] == []


def test_the_key_figures_as_json_and_csv(client: TestClient) -> None:
    record = ended_call(client)
    answer = client.get(f"/webcast/{record.id}/key-figures.json")
    assert answer.status_code == 200
    first = answer.json()["key_figures"][0]
    assert first == {
        "what": "revenue",
        "value": "$42 million",
        "period": "Q3 2026",
        "time_s": 7.0,
        "clock": "0:07",
        "segment": 1,
        "speaker": "Jane Roe",
        "said": "Revenue for the quarter was $42 million, up 12%.",
    }
    download = client.get(f"/webcast/{record.id}/key-figures.csv")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    read = list(csv.reader(io.StringIO(download.text)))
    assert tuple(read[0]) == CSV_HEAD and len(read) == 5
    assert read[3][2:5] == ["revenue guidance", "$45 million to $47 million", "Q4 2026"]


def test_only_a_browser_that_may_listen_gets_them_and_only_within_the_window(
    client: TestClient,
) -> None:
    record = ended_call(client, registration="required")
    for kind in ("json", "csv"):
        assert client.get(f"/webcast/{record.id}/key-figures.{kind}").status_code == 403
    expired = ended_call(client, replay_until="2026-11-20")
    assert client.get(f"/webcast/{expired.id}/key-figures.json").status_code == 410
    assert client.get("/webcast/999999/key-figures.json").status_code == 404
