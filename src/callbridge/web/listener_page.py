"""What the webcast page shows a listener besides the player: the transcript, the downloads, the
privacy line.

``transcript_view`` lays the replay's transcript out as an earnings-call
transcript reads (a speaker's turn, led by its time, which seeks the replay),
and breaks a long turn into paragraphs at its pauses, each led by its own
time: a transcript made without speaker stems is one speaker's turn from
start to end, and would otherwise be one unbroken paragraph. ``files`` lists
what a listener may download once the call is over; ``privacy_line`` is what
the registration form says about the data it asks for.

Imports nothing of ``web.media`` (which imports ``web.webcast``): the replay's
files are found through ``request.app.state.webcast_media``, as the page's
module does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from callbridge.announce import timefmt
from callbridge.events.schema import EventRecord
from callbridge.transcript import turns as turn_docs
from callbridge.transcript.editing import Section, marked_sections
from callbridge.transcript.model import Hit, search
from callbridge.transcript.transcribe import TRANSCRIPT as TRANSCRIPT_JSON
from callbridge.transcript.transcribe import load_transcript
from callbridge.transcript.turns import clock, shown_text, speaker_turns
from callbridge.web.transcript_published import published_for

# A turn is cut into paragraphs at a pause this long, or once a paragraph has this many
# characters (a sentence boundary past it: a segment is the smallest piece).
PARAGRAPH_PAUSE_S = 2.5
PARAGRAPH_CHARS = 600
MAX_QUERY = 200


@dataclass(frozen=True)
class SegmentView:
    start: float
    clock: str
    speaker: str | None
    html: Markup


@dataclass(frozen=True)
class ParagraphView:
    """Part of a turn: its segments, each still a link into the replay."""

    start: float
    clock: str
    segments: list[tuple[int, SegmentView]]  # (index in the transcript, segment)


@dataclass(frozen=True)
class TurnView:
    """One speaker's uninterrupted stretch, in paragraphs."""

    speaker: str | None
    label: str  # who the page says is speaking ("Speaker" when nobody was named)
    start: float
    clock: str
    prompt: bool
    paragraphs: list[ParagraphView]

    @property
    def segments(self) -> list[tuple[int, SegmentView]]:
        return [item for paragraph in self.paragraphs for item in paragraph.segments]


@dataclass(frozen=True)
class SectionView:
    """Turns under a heading the editor marked (None: no heading)."""

    heading: str | None
    level: int
    turns: list[TurnView]


@dataclass(frozen=True)
class TranscriptView:
    query: str
    segments: list[SegmentView]
    hits: list[Hit]
    sections: list[SectionView]
    # The editor's published version shown ("Reviewed ... version 2"); None: the automatic one.
    reviewed: str | None = None

    @property
    def turns(self) -> list[TurnView]:
        return [turn for section in self.sections for turn in section.turns]

    @property
    def hit_indices(self) -> frozenset[int]:
        return frozenset(hit.segment for hit in self.hits)


def paragraphs(
    items: list[tuple[int, SegmentView]],
    ends: dict[int, float],
    pause_s: float = PARAGRAPH_PAUSE_S,
    chars: int = PARAGRAPH_CHARS,
) -> list[ParagraphView]:
    """``items`` (one turn's segments in order) cut at pauses and past ``chars`` characters.

    ``ends`` gives each segment's end (by its index), to measure the pause before the next.
    """
    found: list[ParagraphView] = []
    current: list[tuple[int, SegmentView]] = []
    length = 0
    previous_end: float | None = None
    for index, segment in items:
        pause = previous_end is not None and segment.start - previous_end >= pause_s
        if current and (pause or length >= chars):
            found.append(ParagraphView(current[0][1].start, current[0][1].clock, current))
            current, length = [], 0
        current.append((index, segment))
        length += len(segment.html.striptags()) + 1
        previous_end = ends[index]
    if current:
        found.append(ParagraphView(current[0][1].start, current[0][1].clock, current))
    return found


async def transcript_view(
    request: Request, record: EventRecord, query: str
) -> TranscriptView | None:
    """The replay's transcript searched for ``query``; None until there is one.

    Call it only for a listener who may listen, within the replay window.
    """
    media = getattr(request.app.state, "webcast_media", None)
    if media is None:
        return None
    found = await run_in_threadpool(media.replay, record.id)
    if found is None:
        return None
    published = await published_for(request, record.id)
    reviewed = None
    if published is not None:
        transcript = published.transcript
        day = published.published_at.astimezone(record.zone).date()
        reviewed = (
            f"Reviewed by {record.company.name} and published on {timefmt.long_date(day)} "
            f"(version {published.version})."
        )
    else:
        loaded = await run_in_threadpool(load_transcript, found.directory)
        if loaded is None:
            return None
        transcript = loaded
    query = query[:MAX_QUERY]
    hits = search(transcript, query) if query.strip() else []
    marked = {hit.segment: Markup(hit.marked()) for hit in hits}
    segments = [
        SegmentView(
            start=segment.start,
            clock=clock(segment.start),
            speaker=segment.speaker,
            html=marked.get(index, Markup.escape(shown_text(segment))),
        )
        for index, segment in enumerate(transcript.segments)
    ]
    ends = {index: segment.end for index, segment in enumerate(transcript.segments)}
    marks = published.marks if published is not None else ()
    # Without the editor's marks, one untitled part as before (the page has no headings).
    parts = (
        marked_sections(transcript, marks)
        if marks
        else [Section(None, 2, speaker_turns(transcript))]
    )
    views = [
        SectionView(
            heading=part.heading,
            level=part.level,
            turns=[
                TurnView(
                    speaker=turn.speaker,
                    label=turn.label,
                    start=turn.start,
                    clock=clock(turn.start),
                    prompt=turn.prompt,
                    paragraphs=paragraphs(
                        [(index, segments[index]) for index in turn.segments], ends
                    ),
                )
                for turn in part.turns
            ],
        )
        for part in parts
    ]
    return TranscriptView(
        query=query, segments=segments, hits=hits, sections=views, reviewed=reviewed
    )


@dataclass(frozen=True)
class FileLink:
    label: str
    href: str
    kind: str  # what the link gives: "TXT", "DOCX", "HTML", "VTT"


@dataclass(frozen=True)
class ListenerFiles:
    """The call's downloads for a listener: the recording and the transcript, once they exist.

    ``recording`` is None until the replay is ready; the page shows it then
    without a reload (``static/webcast.js``).
    """

    recording: str | None
    transcript: list[FileLink]

    @property
    def listed(self) -> bool:
        return self.recording is not None or bool(self.transcript)


# The transcript's files as the page lists them, in the order a reader reaches for them.
# The PDF is made when asked (web.media), from the transcript.json beside the others.
_TRANSCRIPT_LINKS = (
    ("txt", turn_docs.TEXT, "Download the transcript (text)", "TXT"),
    ("pdf", TRANSCRIPT_JSON, "Download the transcript (PDF)", "PDF"),
    ("docx", turn_docs.DOCX, "Download the transcript (Word)", "DOCX"),
    ("html", turn_docs.HTML, "Open the transcript as a web page", "HTML"),
)


def _files_on_disk(
    event_id: int, directory: Path, m4a: Path, captions: Path | None, published: bool = False
) -> ListenerFiles:
    links = [
        FileLink(label, f"/webcast/{event_id}/transcript.{kind}", shown)
        for kind, name, label, shown in _TRANSCRIPT_LINKS
        if published or (directory / name).is_file()
    ]
    if captions is not None and links:
        links.append(
            FileLink("Download the captions (WebVTT)", f"/webcast/{event_id}/captions.vtt", "VTT")
        )
    recording = f"/webcast/{event_id}/replay.m4a" if m4a.is_file() else None
    return ListenerFiles(recording, links)


async def files(request: Request, record: EventRecord, replay_open: bool) -> ListenerFiles:
    """What a listener who may listen can download now (nothing outside the replay window)."""
    media = getattr(request.app.state, "webcast_media", None)
    if media is None or not replay_open:
        return ListenerFiles(None, [])
    found = await run_in_threadpool(media.replay, record.id)
    if found is None:
        return ListenerFiles(None, [])
    published = await published_for(request, record.id) is not None
    return await run_in_threadpool(
        _files_on_disk, record.id, found.directory, found.m4a, found.captions, published
    )


def privacy_line(record: EventRecord) -> str:
    """What the registration form tells a listener about the data it asks for, and why."""
    company = record.company.name
    return (
        f"{company} keeps the name, firm and email you give here, with when you listened and "
        f"any question you send, to run this webcast and to know who attended. They are for "
        f"{company}'s investor relations team."
    )
