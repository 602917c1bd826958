"""The editor's pass over a transcript: corrections, section marks, the published version.

An IR editor corrects the automatic transcript segment by segment: a
segment's words, who said it, and marks where a part of the call starts
(prepared remarks, the question-and-answer session, each question). Each
thing changed is one ``Change`` (segment, field, new value); the draft is the
latest value of each (segment, field), laid over the automatic transcript,
which itself is never changed. Publishing freezes the draft as a
``Published`` document (a version number, who, when), which listeners,
captions and downloads then read.

Also here: which corrections to offer for the event's glossary (the same
words corrected the same way at least twice), and the sections a published
document reads in. All pure: values in, values out; time is the caller's.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.turns import QA, REMARKS, Turn, sections, speaker_turns

MAX_TEXT = 4000  # one segment's words; a segment is a few seconds of speech
MAX_SPEAKER = 100  # as the event's speaker names (events.names.MAX_NAME)
MAX_LABEL = 200  # a question mark's label: "Jane Roe, Example Securities"
MAX_CHANGES = 2000  # one save; a long call has a few hundred segments
# A glossary term is a name or a short phrase (events.schema: 60 characters, one line).
MAX_TERM = 60
MAX_TERM_WORDS = 4
OFFER_AFTER = 2  # the same correction this many times is offered for the glossary
# A correction applies to the segment it was made on: one whose start moved further than
# this (the transcript was made again) is stale and left out.
START_TOLERANCE_S = 0.05


class EditField(enum.StrEnum):
    TEXT = "text"
    SPEAKER = "speaker"
    MARK = "mark"


class MarkKind(enum.StrEnum):
    REMARKS = "remarks"
    QA = "qa"
    QUESTION = "question"


HEADINGS = {MarkKind.REMARKS: REMARKS, MarkKind.QA: QA, MarkKind.QUESTION: "Question"}


class EditError(ValueError):
    """A change that cannot be made; ``field`` names where ("edits[2].text")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Mark:
    """A part of the call starts at segment ``segment``: its heading in the documents."""

    segment: int
    kind: MarkKind
    label: str = ""

    @property
    def heading(self) -> str:
        if self.kind is MarkKind.QUESTION and self.label:
            return f"Question from {self.label}"
        return HEADINGS[self.kind]

    @property
    def level(self) -> int:
        """2 for a part of the call, 3 for a question within it."""
        return 3 if self.kind is MarkKind.QUESTION else 2

    @property
    def value(self) -> str:
        """As a ``Change`` of the mark field stores it: "qa", "question:Jane Roe, Acme"."""
        return f"{self.kind.value}:{self.label}" if self.label else self.kind.value


def parse_mark(segment: int, value: str, where: str = "mark") -> Mark | None:
    """A mark field's value as a ``Mark``; "" is no mark. Raises ``EditError`` naming ``where``."""
    if not value:
        return None
    kind, _, label = value.partition(":")
    try:
        mark_kind = MarkKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in MarkKind)
        raise EditError(where, f"a section mark is one of {kinds}, not {kind!r}") from None
    label = " ".join(label.split())
    if label and mark_kind is not MarkKind.QUESTION:
        raise EditError(where, "only a question's mark has a label (who asks)")
    if len(label) > MAX_LABEL:
        raise EditError(where, f"a question's label is at most {MAX_LABEL} characters")
    return Mark(segment, mark_kind, label)


@dataclass(frozen=True)
class Change:
    """One thing the editor changed: a segment's text, its speaker or its section mark.

    ``value`` "" clears a speaker (unnamed) or a mark; a text of "" leaves the
    segment out of the documents.
    """

    segment: int
    field: EditField
    value: str


def _clean_text(value: str) -> str:
    return " ".join(value.replace("\x00", "").split())


def parse_changes(raw: object, transcript: Transcript) -> list[Change]:
    """The editor's changes as sent (``[{"segment": 3, "text": "..."}, ...]``), checked.

    Each item names a segment of ``transcript`` and any of ``text``,
    ``speaker`` and ``mark``. Raises ``EditError`` naming the first item and
    field at fault; nothing is taken from a list with a fault in it.
    """
    if not isinstance(raw, list):
        raise EditError("edits", "a list of changes, each naming its segment")
    if len(raw) > MAX_CHANGES:
        raise EditError("edits", f"at most {MAX_CHANGES} changes at once")
    changes: list[Change] = []
    count = len(transcript.segments)
    for position, item in enumerate(raw):
        where = f"edits[{position}]"
        if not isinstance(item, dict):
            raise EditError(where, "each change is an object with a segment")
        segment = item.get("segment")
        if not isinstance(segment, int) or isinstance(segment, bool):
            raise EditError(f"{where}.segment", "the segment's number, from 0")
        if not 0 <= segment < count:
            raise EditError(f"{where}.segment", f"the transcript has segments 0 to {count - 1}")
        unknown = set(item) - {"segment", *(f.value for f in EditField)}
        if unknown:
            raise EditError(f"{where}.{sorted(unknown)[0]}", "not a field a change has")
        for name in EditField:
            if name.value not in item:
                continue
            value = item[name.value]
            here = f"{where}.{name.value}"
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise EditError(here, "a string")
            if name is EditField.TEXT:
                value = _clean_text(value)
                if len(value) > MAX_TEXT:
                    raise EditError(here, f"at most {MAX_TEXT} characters")
            elif name is EditField.SPEAKER:
                value = _clean_text(value)
                if len(value) > MAX_SPEAKER:
                    raise EditError(here, f"a speaker's label is at most {MAX_SPEAKER} characters")
            else:
                mark = parse_mark(segment, value.strip(), here)
                value = "" if mark is None else mark.value
            changes.append(Change(segment, name, value))
    return changes


def automatic_value(segment: TranscriptSegment, name: EditField) -> str:
    """What a field reads before any correction (no mark: "")."""
    if name is EditField.TEXT:
        return segment.text
    if name is EditField.SPEAKER:
        return segment.speaker or ""
    return ""


@dataclass(frozen=True)
class Draft:
    """The automatic transcript with the editor's latest values laid over it."""

    transcript: Transcript
    marks: tuple[Mark, ...]
    corrected: frozenset[int]  # segments whose text or speaker differs from the automatic
    stale: tuple[int, ...] = ()  # segments whose corrections no longer fit (made again)


def apply(
    automatic: Transcript,
    values: Mapping[tuple[int, EditField], str],
    starts: Mapping[int, float] | None = None,
) -> Draft:
    """``automatic`` with each (segment, field)'s latest value in ``values``.

    ``starts`` gives, per segment, the start the correction was made on: a
    segment of ``automatic`` that no longer starts there (the transcript was
    made again since) keeps its automatic text and is listed as stale.
    """
    starts = starts or {}
    segments = list(automatic.segments)
    marks: list[Mark] = []
    corrected: set[int] = set()
    stale: set[int] = set()
    for (index, name), value in sorted(values.items()):
        if not 0 <= index < len(segments):
            stale.add(index)
            continue
        at = starts.get(index)
        if at is not None and abs(segments[index].start - at) > START_TOLERANCE_S:
            stale.add(index)
            continue
        segment = segments[index]
        if name is EditField.MARK:
            mark = parse_mark(index, value)
            if mark is not None:
                marks.append(mark)
            continue
        if value == automatic_value(automatic.segments[index], name):
            continue
        if name is EditField.TEXT:
            segments[index] = dataclasses.replace(segment, text=value)
        else:
            segments[index] = dataclasses.replace(segment, speaker=value or None)
        corrected.add(index)
    transcript = dataclasses.replace(automatic, segments=segments)
    return Draft(
        transcript,
        tuple(sorted(marks, key=lambda m: m.segment)),
        frozenset(corrected),
        tuple(sorted(stale)),
    )


# -- the published version -------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """A version of the transcript as the editor published it."""

    transcript: Transcript
    marks: tuple[Mark, ...]
    version: int
    published_at: datetime
    published_by: str
    corrections: int = 0  # segments corrected against the automatic transcript

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "published_at": self.published_at.isoformat(),
            "published_by": self.published_by,
            "corrections": self.corrections,
            "marks": [
                {"segment": m.segment, "kind": m.kind.value, "label": m.label} for m in self.marks
            ],
            "transcript": self.transcript.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Published:
        return cls(
            transcript=Transcript.from_json(data["transcript"]),
            marks=tuple(
                Mark(int(m["segment"]), MarkKind(m["kind"]), str(m.get("label", "")))
                for m in data["marks"]
            ),
            version=int(data["version"]),
            published_at=datetime.fromisoformat(data["published_at"]),
            published_by=str(data["published_by"]),
            corrections=int(data.get("corrections", 0)),
        )


def publish(draft: Draft, version: int, at: datetime, by: str) -> Published:
    """The draft frozen as version ``version``; raises ``EditError`` when nothing would read."""
    if not any(segment.text.strip() for segment in draft.transcript.segments):
        raise EditError("transcript", "every segment is empty: there is nothing to publish")
    return Published(draft.transcript, draft.marks, version, at, by, len(draft.corrected))


# -- sections --------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """Turns under a heading (None: before any heading); ``level`` 2 or 3."""

    heading: str | None
    level: int
    turns: list[Turn] = field(default_factory=list)


def _shifted(turn: Turn, offset: int) -> Turn:
    return dataclasses.replace(turn, segments=tuple(i + offset for i in turn.segments))


def marked_sections(transcript: Transcript, marks: Sequence[Mark]) -> list[Section]:
    """The transcript's turns under the editor's section marks.

    Without marks: the automatic parts (``turns.sections``: prepared remarks
    and Q&A from where the first analyst's line opened). With marks, a turn
    never runs across one; when the editor marked only questions, the
    automatic parts still head them.
    """
    if not marks:
        return [Section(heading, 2, turns) for heading, turns in sections(transcript)]
    marks = [*marks, *_automatic_parts(transcript, marks)]
    plain = dataclasses.replace(transcript, qa_start=None)
    at: dict[int, list[Mark]] = {}
    for mark in sorted(marks, key=lambda m: (m.segment, m.level)):
        at.setdefault(mark.segment, []).append(mark)
    bounds = sorted(at)
    starts = [0, *bounds] if bounds[0] > 0 else bounds
    found: list[Section] = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(transcript.segments)
        part = dataclasses.replace(plain, segments=plain.segments[start:end])
        turns = [_shifted(turn, start) for turn in speaker_turns(part)]
        here = at.get(start, [])
        # Two marks on one segment (Q&A and its first question): a heading of its own first.
        found += [Section(m.heading, m.level) for m in here[:-1]]
        last = here[-1] if here else None
        found.append(
            Section(None, 2, turns) if last is None else Section(last.heading, last.level, turns)
        )
    return [s for s in found if s.turns or s.heading is not None]


def _automatic_parts(transcript: Transcript, marks: Sequence[Mark]) -> list[Mark]:
    """Prepared remarks and Q&A where the call log says, unless the editor marked parts."""
    if transcript.qa_start is None or any(m.level == 2 for m in marks):
        return []
    first_qa = next(
        (
            i
            for i, s in enumerate(transcript.segments)
            if s.start >= transcript.qa_start - 0.5 and s.text.strip()
        ),
        None,
    )
    parts = [] if first_qa == 0 else [Mark(0, MarkKind.REMARKS)]
    if first_qa is not None:
        parts.append(Mark(first_qa, MarkKind.QA))
    return parts


# -- glossary offers -------------------------------------------------------------------


_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = ".,;:!?\"'()[]"


def word_changes(before: str, after: str) -> list[tuple[str, str]]:
    """The words replaced in ``before`` to make ``after``: [("t dm one", "T-DM1"), ...].

    Only replacements count (words put in or taken out alone are no term);
    punctuation at a phrase's ends is left off, so "Zyloprin." is "Zyloprin".
    """
    old = _WORD.findall(before)
    new = _WORD.findall(after)
    found: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, [w.lower() for w in old], [w.lower() for w in new])
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace":
            if tag == "equal":
                # Same words, other case ("zyloprin" to "Zyloprin"): a spelling too.
                found.extend((a, b) for a, b in zip(old[i1:i2], new[j1:j2], strict=True) if a != b)
            continue
        was = " ".join(old[i1:i2]).strip(_EDGE_PUNCTUATION)
        now = " ".join(new[j1:j2]).strip(_EDGE_PUNCTUATION)
        if was and now and was != now:
            found.append((was, now))
    return [(a.strip(_EDGE_PUNCTUATION), b.strip(_EDGE_PUNCTUATION)) for a, b in found]


@dataclass(frozen=True)
class GlossaryOffer:
    """A spelling the editor wrote ``count`` times in place of what the engine heard."""

    term: str
    count: int
    heard: tuple[str, ...]  # what the engine wrote instead, most often first


def _is_term(text: str) -> bool:
    return (
        0 < len(text) <= MAX_TERM
        and len(text.split()) <= MAX_TERM_WORDS
        and not any(c in text for c in "\n\r\t")
        and any(c.isalpha() for c in text)
    )


def glossary_offers(
    corrections: Iterable[tuple[str, str]],
    glossary: Iterable[str],
    at_least: int = OFFER_AFTER,
) -> list[GlossaryOffer]:
    """Terms to offer for the glossary from (automatic text, corrected text) pairs.

    A term is offered when the editor wrote it in place of other words at
    least ``at_least`` times, and the glossary (compared without case) does
    not already have it; most corrected first.
    """
    known = {term.casefold() for term in glossary}
    counts: Counter[str] = Counter()
    heard: dict[str, Counter[str]] = {}
    for before, after in corrections:
        for was, now in word_changes(before, after):
            if not _is_term(now) or now.casefold() in known:
                continue
            counts[now] += 1
            heard.setdefault(now, Counter())[was] += 1
    return [
        GlossaryOffer(term, count, tuple(w for w, _ in heard[term].most_common()))
        for term, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if count >= at_least
    ]
