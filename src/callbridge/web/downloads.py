"""The links to an event's exports that the console's pages show (the event's, the report's).

The CSVs (``web.exports``, ``web.report``), the engagement report's page and
the transcript's editor (``web.transcript_editor``) and downloads
(``web.media``: the published version once there is one), listed only once
the transcript is done, so no link answers "not ready". Imports nothing of ``web`` so the
pages' modules may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

# The transcript's downloads (web.media's TRANSCRIPT_FILES), as the console names them.
TRANSCRIPT_KINDS = {
    "txt": "Transcript (text)",
    "html": "Transcript (web page)",
    "docx": "Transcript (Word)",
    "pdf": "Transcript (PDF)",
}


@dataclass(frozen=True)
class Download:
    label: str
    href: str
    kind: str  # what the link gives: "page", "PDF", "CSV", "TXT", "HTML", "DOCX"
    note: str = ""


def downloads(event_id: int, *, transcript_ready: bool, report_page: bool = True) -> list[Download]:
    """The event's exports, in the order an IR team reaches for them."""
    api = f"/api/events/{event_id}"
    links = []
    if report_page:
        links.append(Download("Engagement report", f"/console/events/{event_id}/report", "page"))
    links += [
        Download("Engagement report", f"{api}/report.pdf", "PDF", "one page to forward"),
        Download("Engagement report", f"{api}/report.csv", "CSV", "figures by channel"),
        Download("Attendance", f"{api}/attendance.csv", "CSV", "every caller and web listener"),
        Download("Questions", f"{api}/questions.csv", "CSV", "*1 and written"),
        Download("Audit trail", f"{api}/audit.csv", "CSV", "every action on the call"),
    ]
    if transcript_ready:
        links.append(
            Download(
                "Transcript editor",
                f"/console/events/{event_id}/transcript",
                "page",
                "correct words and speakers, then publish",
            )
        )
        links += [
            Download(label, f"/webcast/{event_id}/transcript.{kind}", kind.upper())
            for kind, label in TRANSCRIPT_KINDS.items()
        ]
    return links


async def downloads_for(
    request: Request, event_id: int, *, report_page: bool = True
) -> list[Download]:
    """``downloads`` with the transcript's state read from the event's recordings."""
    media = getattr(request.app.state, "webcast_media", None)
    progress = (
        None if media is None else await run_in_threadpool(media.transcript_progress, event_id)
    )
    ready = progress is not None and progress.state == "done"
    return downloads(event_id, transcript_ready=ready, report_page=report_page)
