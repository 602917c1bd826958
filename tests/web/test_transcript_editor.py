"""The transcript editor's API and pages: a draft saved change by change with its audit
rows, published as versions that listeners, captions and downloads then read."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.events.schema import EventRecord, EventState
from callbridge.store import layout
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.transcribe import write_transcript
from callbridge.web import pages
from callbridge.web.media import REPLAY_DIR, REPLAY_PLAYLIST, REPLAY_READY, WebcastMedia
from tests.web.test_pages import login, make_event

TODAY = datetime(2026, 11, 6, 15, 0, tzinfo=UTC)
SPEAKERS = [
    {"name": "Jane Roe", "title": "Chief Financial Officer"},
    {"name": "Mark Chen", "title": "Chief Executive Officer"},
]
TRANSCRIPT = Transcript(
    segments=[
        TranscriptSegment(1.0, 4.0, "Operator", "Welcome to the Northwind call."),
        TranscriptSegment(7.0, 11.0, "Speaker 1", "Sales of zylo prin grew to $42 million."),
        TranscriptSegment(11.5, 14.0, "Speaker 1", "Zylo prin is now sold in 12 countries."),
        TranscriptSegment(75.0, 78.0, "Speaker 2", "What drove the growth?"),
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


def ended_call(client: TestClient, transcript: Transcript = TRANSCRIPT) -> tuple[EventRecord, Path]:
    """An ended event with its replay packaged and its automatic transcript written."""
    record = make_event(
        client,
        title="Third Quarter Fiscal Year 2026 Financial Results",
        state=EventState.ENDED,
        registration="off",
        replay_until="2026-11-30",
        speakers=SPEAKERS,
    )
    media: WebcastMedia = client.app.state.webcast_media  # type: ignore[attr-defined]
    directory = layout.recording_dir(media.data_dir, record.id, "20261105T213000Z")
    (directory / REPLAY_DIR).mkdir(parents=True)
    (directory / REPLAY_DIR / REPLAY_PLAYLIST).write_text("#EXTM3U\n")
    (directory / REPLAY_DIR / REPLAY_READY).write_text("{}")
    (directory / "recording.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(4000))
    write_transcript(directory, transcript)
    return record, directory


def test_save_a_draft_publish_and_listeners_read_the_published_version(
    client: TestClient, auth: dict[str, str]
) -> None:
    record, directory = ended_call(client)
    api = f"/api/events/{record.id}/transcript"
    automatic_txt = (directory / "transcript.txt").read_text()

    draft = client.get(api, headers=auth).json()
    assert draft["version"] is None and draft["corrected"] == []
    assert draft["segments"][1]["automatic"]["text"] == "Sales of zylo prin grew to $42 million."

    saved = client.post(
        f"{api}/edits",
        headers=auth,
        json={
            "edits": [
                {
                    "segment": 1,
                    "text": "Sales of Zyloprin grew to $42 million.",
                    "speaker": "Jane Roe, Chief Financial Officer",
                    "mark": "remarks",
                },
                {
                    "segment": 2,
                    "text": "Zyloprin is now sold in 12 countries.",
                    "speaker": "Jane Roe, Chief Financial Officer",
                },
                {"segment": 3, "mark": "question:Ann Lee, Acme Securities"},
                {"segment": 0, "text": "Welcome to the Northwind call."},  # unchanged: not kept
            ]
        },
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["saved"] == 6 and body["corrected"] == [1, 2]
    assert [o["term"] for o in body["offers"]] == ["Zyloprin"]  # corrected the same way twice

    # Listeners still read the automatic transcript: a draft is nobody's but the editor's.
    assert client.get(f"/webcast/{record.id}/transcript.txt").text == automatic_txt
    # The PDF, which the transcription does not write, is made of the automatic one meanwhile.
    unreviewed = client.get(f"/webcast/{record.id}/transcript.pdf")
    assert unreviewed.status_code == 200 and unreviewed.content.startswith(b"%PDF")
    first = pdfium.PdfDocument(io.BytesIO(unreviewed.content))
    assert "not yet reviewed" in first[0].get_textpage().get_text_range()
    first.close()

    published = client.post(f"{api}/publish", headers=auth)
    assert published.status_code == 200, published.text
    assert published.json()["version"] == 1 and published.json()["corrections"] == 2

    text = client.get(f"/webcast/{record.id}/transcript.txt")
    assert text.status_code == 200
    assert text.headers["content-disposition"].endswith('transcript.txt"')
    assert text.text.startswith(
        "Northwind Biologics, Inc.: Third Quarter Fiscal Year 2026 Financial Results\n"
    )
    assert "Jane Roe, Chief Financial Officer\nMark Chen, Chief Executive Officer" in text.text
    assert "[0:07] Jane Roe, Chief Financial Officer\nSales of Zyloprin grew" in text.text
    assert "Question from Ann Lee, Acme Securities" in text.text
    assert "zylo prin" not in text.text.lower().replace("zyloprin", "")
    assert "Transcript version 1, reviewed and published on November 6, 2026." in text.text
    # The key figures of the published version head it, each with its time in the replay.
    assert "Key figures" in text.text and "$42 million" in text.text.split("[0:00]")[0]

    page = client.get(f"/events/{record.id}/webcast").text
    assert "Sales of Zyloprin grew" in page and "zylo prin" not in page
    assert "Reviewed by Northwind Biologics, Inc. and published on November 6, 2026" in page
    assert "Question from Ann Lee, Acme Securities" in page
    assert "/transcript.pdf" in page

    captions = client.get(f"/webcast/{record.id}/captions.vtt")
    assert captions.status_code == 200 and captions.text.startswith("WEBVTT")
    assert "<v Jane Roe, Chief Financial Officer>Sales of Zyloprin grew" in captions.text

    pdf_answer = client.get(f"/webcast/{record.id}/transcript.pdf")
    assert pdf_answer.headers["content-type"] == "application/pdf"
    pdf = pdfium.PdfDocument(io.BytesIO(pdf_answer.content))
    pdf_text = " ".join(" ".join(p.get_textpage().get_text_range().split()) for p in pdf)
    pdf.close()
    assert "Sales of Zyloprin grew" in pdf_text and "Mark Chen, Chief Executive Officer" in pdf_text
    assert "Key figures" in pdf_text and "$42 million" in pdf_text

    for kind in ("html", "docx"):
        assert client.get(f"/webcast/{record.id}/transcript.{kind}").status_code == 200
    html_answer = client.get(f"/webcast/{record.id}/transcript.html")
    assert "default-src 'none'" in html_answer.headers["content-security-policy"]
    assert "Sales of Zyloprin grew" in html_answer.text

    # The automatic transcript stays as it was made.
    assert (directory / "transcript.txt").read_text() == automatic_txt
    assert json.loads((directory / "transcript.json").read_text())["segments"][1]["text"] == (
        "Sales of zylo prin grew to $42 million."
    )
    assert client.get(f"{api}/revisions", headers=auth).json()[0]["version"] == 1


def test_every_change_and_publication_is_in_the_audit_trail(
    client: TestClient, auth: dict[str, str]
) -> None:
    record, _ = ended_call(client)
    api = f"/api/events/{record.id}/transcript"
    client.post(f"{api}/edits", headers=auth, json={"edits": [{"segment": 3, "text": "Why?"}]})
    client.post(f"{api}/edits", headers=auth, json={"edits": [{"segment": 3, "text": "Why so?"}]})
    client.post(f"{api}/publish", headers=auth)
    client.post(f"{api}/glossary", headers=auth, json={"terms": ["Zyloprin"]})
    rows = list(
        csv.reader(io.StringIO(client.get(f"/api/events/{record.id}/audit.csv", headers=auth).text))
    )
    header, entries = rows[0], rows[1:]
    kind, actor, detail = header.index("kind"), header.index("actor"), header.index("detail")
    ours = [
        (r[kind], r[actor], json.loads(r[detail]))
        for r in entries
        if r[kind].startswith(("transcript", "glossary"))
    ]
    assert ours == [
        (
            "transcript_edit",
            "dana",
            {"field": "text", "from": "What drove the growth?", "segment": 3, "to": "Why?"},
        ),
        (
            "transcript_edit",
            "dana",
            {"field": "text", "from": "Why?", "segment": 3, "to": "Why so?"},
        ),
        ("transcript_published", "dana", {"corrections": 1, "version": 1}),
        ("glossary_added", "dana", {"terms": ["Zyloprin"]}),
    ]
    assert client.app.state.events.get(record.id).glossary[-1] == "Zyloprin"  # type: ignore[attr-defined]


def test_bad_changes_are_refused_whole_and_named(client: TestClient, auth: dict[str, str]) -> None:
    record, _ = ended_call(client)
    api = f"/api/events/{record.id}/transcript"
    answer = client.post(
        f"{api}/edits",
        headers=auth,
        json={"edits": [{"segment": 1, "text": "fine"}, {"segment": 2, "mark": "coda"}]},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "edits[1]", "mark"]
    assert client.get(api, headers=auth).json()["corrected"] == []  # nothing was kept
    too_long = client.post(f"{api}/glossary", headers=auth, json={"terms": ["x" * 61]})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "terms[0]"]
    assert client.post(f"{api}/edits", json={"edits": []}).status_code == 401
    assert client.get("/api/events/999/transcript", headers=auth).status_code == 404


def test_no_transcript_yet(client: TestClient, auth: dict[str, str]) -> None:
    record = make_event(client, title="Q3", state=EventState.ENDED, registration="off")
    answer = client.get(f"/api/events/{record.id}/transcript", headers=auth)
    assert answer.status_code == 404 and "no transcript yet" in answer.text
    login(client)
    page = client.get(f"/console/events/{record.id}/transcript")
    assert page.status_code == 200 and "No transcript yet" in page.text


def test_the_editor_page_is_for_operators_and_linked_from_the_call(client: TestClient) -> None:
    record, _ = ended_call(client)
    path = f"/console/events/{record.id}/transcript"
    refused = client.get(path, follow_redirects=False)
    assert refused.status_code in (302, 303, 307) and "/login" in refused.headers["location"]
    assert client.get(f"{path}/audio", follow_redirects=False).status_code != 200
    login(client)
    page = client.get(path).text
    assert 'id="seg-1"' in page and "Sales of zylo prin grew to $42 million." in page
    assert '<option value="Jane Roe, Chief Financial Officer">' in page
    assert f'href="{path}"' in client.get("/console").text  # on the ended call's row
    audio = client.get(f"{path}/audio", headers={"Range": "bytes=0-99"})
    assert audio.status_code == 206 and len(audio.content) == 100


def test_a_second_version_and_a_transcript_made_again(
    client: TestClient, auth: dict[str, str]
) -> None:
    record, directory = ended_call(client)
    api = f"/api/events/{record.id}/transcript"
    client.post(f"{api}/edits", headers=auth, json={"edits": [{"segment": 3, "text": "Why?"}]})
    assert client.post(f"{api}/publish", headers=auth).json()["version"] == 1
    client.post(f"{api}/edits", headers=auth, json={"edits": [{"segment": 2, "speaker": "X"}]})
    assert client.post(f"{api}/publish", headers=auth).json()["version"] == 2
    assert [r["version"] for r in client.get(f"{api}/revisions", headers=auth).json()] == [2, 1]
    login(client)
    page = client.get(f"/console/events/{record.id}/transcript").text
    assert "Published version 2" in page and "Publish version 3" in page

    # The transcript is made again and segment 3 now starts elsewhere: its correction is
    # left out (and said so), not laid over other words.
    moved = Transcript(
        [*TRANSCRIPT.segments[:3], TranscriptSegment(70.0, 74.0, "Speaker 2", "What drove it?")],
        engine="fake",
        duration_s=80.0,
        elapsed_s=1.0,
    )
    write_transcript(directory, moved)
    draft = client.get(api, headers=auth).json()
    assert draft["stale"] == [3]
    assert draft["segments"][3]["text"] == "What drove it?"
    assert (
        "made on an earlier transcript"
        in client.get(f"/console/events/{record.id}/transcript").text
    )
    # Listeners keep the published version until the editor publishes again.
    assert "Why?" in client.get(f"/webcast/{record.id}/transcript.txt").text
