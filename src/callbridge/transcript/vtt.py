"""WebVTT captions: writing cues with voice spans, and a small parser for round trips.

Only what the transcript needs of the W3C WebVTT format: a ``WEBVTT`` header,
cues of ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` and a payload of at most two lines,
optionally inside one ``<v Speaker>`` span. Text is escaped (``&``, ``<``,
``>``), so nothing a speaker says can open a tag or end a timing line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

LINE_CHARS = 42  # the usual caption width
MAX_LINES = 2
MAX_CUE_S = 7.0

_TIMESTAMP = re.compile(r"^(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})$")
_VOICE = re.compile(r"^<v(?:\.[^\s>]*)?[ \t]+([^>]*)>(.*?)(?:</v>)?$", re.DOTALL)
_TAG = re.compile(r"</?[^>]*>")


class VttError(ValueError):
    """Text that is not WebVTT this parser understands."""


@dataclass(frozen=True)
class Cue:
    """One caption: seconds from the start of the recording, text, and who speaks it."""

    start: float
    end: float
    text: str
    voice: str | None = None


def normalise_text(text: str) -> str:
    """What a cue's text becomes once written: one line of single spaces, no NUL."""
    return " ".join(text.replace("\x00", "\ufffd").split())


def format_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (hours always present, so a long call needs no other form)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def parse_timestamp(value: str) -> float:
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        raise VttError(f"bad timestamp {value!r}")
    hours, minutes, secs, millis = match.groups()
    total_ms = ((int(hours or 0) * 60 + int(minutes)) * 60 + int(secs)) * 1000 + int(millis)
    return total_ms / 1000  # from whole milliseconds: a written time reads back unchanged


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u00a0")
    return text.replace("&lrm;", "\u200e").replace("&rlm;", "\u200f").replace("&amp;", "&")


def wrap(text: str, width: int = LINE_CHARS) -> list[str]:
    """Greedy word wrap; a word longer than ``width`` gets a line of its own."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def write_vtt(cues: Iterable[Cue]) -> str:
    """A complete WebVTT file for ``cues`` (their text normalised, escaped and wrapped)."""
    blocks = ["WEBVTT"]
    for cue in cues:
        text = normalise_text(cue.text)
        if not text:
            continue
        end = max(cue.end, cue.start + 0.001)
        payload = "\n".join(escape(line) for line in wrap(text))
        voice = normalise_text(cue.voice or "")
        if voice:
            payload = f"<v {escape(voice)}>{payload}</v>"
        blocks.append(f"{format_timestamp(cue.start)} --> {format_timestamp(end)}\n{payload}")
    return "\n\n".join(blocks) + "\n"


def parse_vtt(content: str) -> list[Cue]:
    """The cues of a WebVTT file (comments, styles and regions skipped; tags other than one
    leading voice span dropped). Raises ``VttError`` when the header is missing."""
    content = content.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
    content = content.removeprefix("\ufeff")
    blocks = re.split(r"\n{2,}", content)
    header = blocks[0]
    if not (header == "WEBVTT" or header.startswith(("WEBVTT ", "WEBVTT\t", "WEBVTT\n"))):
        raise VttError("missing WEBVTT header")
    cues: list[Cue] = []
    for block in blocks[1:]:
        lines = block.split("\n")
        timing_at = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing_at is None or timing_at > 1:
            continue  # NOTE, STYLE, REGION, or a stray block
        start_text, _, rest = lines[timing_at].partition("-->")
        end_text = rest.strip().split()[0] if rest.strip() else ""
        payload = "\n".join(lines[timing_at + 1 :])
        voice: str | None = None
        match = _VOICE.match(payload)
        if match is not None:
            voice = unescape(match.group(1)).strip() or None
            payload = match.group(2)
        text = unescape(_TAG.sub("", payload))
        cues.append(
            Cue(
                parse_timestamp(start_text),
                parse_timestamp(end_text),
                " ".join(text.split()),
                voice,
            )
        )
    return cues
