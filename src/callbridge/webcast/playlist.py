"""HLS media playlists with the Low-Latency extensions, sans IO.

A ``MediaPlaylist`` is an immutable value: the live packager builds a new one
each time a part lands, ``render`` turns it into m3u8 text, ``parse`` reads
back the tags ``render`` writes (and rejects what it does not understand with
a ``PlaylistSyntaxError``), and ``blocking_decision`` answers a blocking
playlist reload (``_HLS_msn`` / ``_HLS_part``) against it.

References: RFC 8216 and its successor draft (draft-pantos-hls-rfc8216bis),
which carries the Low-Latency tags (EXT-X-PART, EXT-X-PART-INF,
EXT-X-PRELOAD-HINT, EXT-X-SERVER-CONTROL) and the rules of blocking reload
(section 6.2.5.2).
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Apple's LL-HLS examples and hls.js use version 6: EXT-X-MAP in a playlist
# without I-frames needs it, and nothing written here needs a later one.
VERSION = 6
MAX_PLAYLIST_BYTES = 1 << 20
MAX_LINES = 50_000


class PlaylistError(ValueError):
    """A playlist model that breaks a rule of the spec (raised by ``validate``)."""


class PlaylistSyntaxError(PlaylistError):
    """Text that ``parse`` does not accept; the message names the line."""


class BlockingRequestError(ValueError):
    """A blocking reload that can never be satisfied; answer with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FileOut:
    """A file a packager must write (atomically) before publishing the playlist naming it.

    Pure data, so the pure packagers (``live.LiveSegmenter``, ``subtitles``) hand
    their files out without importing the threads that write them.
    """

    name: str
    data: bytes


@dataclass(frozen=True)
class Part:
    """A partial segment (EXT-X-PART): a CMAF chunk in its own file."""

    uri: str
    duration: float
    independent: bool = True


@dataclass(frozen=True)
class Segment:
    """A complete media segment (EXTINF + URI), with its parts if still listed."""

    uri: str
    duration: float
    parts: tuple[Part, ...] = ()
    program_date_time: datetime | None = None


@dataclass(frozen=True)
class PartialSegment:
    """The segment being produced: the parts published so far, no URI yet."""

    parts: tuple[Part, ...] = ()
    program_date_time: datetime | None = None


@dataclass(frozen=True)
class MediaPlaylist:
    """One rendering's worth of state of a media playlist.

    ``segments`` are complete segments, oldest first, the first carrying
    media sequence number ``media_sequence``. ``partial`` is the segment in
    progress (live only); ``preload_hint`` the URI of the next part, which the
    server will serve as soon as it exists. ``last_part`` is the position
    (msn, part index) of the newest part, kept even when its EXT-X-PART tags
    are no longer listed, for blocking reload.
    """

    target_duration: int
    media_sequence: int = 0
    segments: tuple[Segment, ...] = ()
    map_uri: str | None = None
    part_target: float | None = None
    part_hold_back: float | None = None
    can_block_reload: bool = False
    partial: PartialSegment | None = None
    preload_hint: str | None = None
    playlist_type: str | None = None  # "VOD" or "EVENT"
    independent_segments: bool = True
    ended: bool = False
    version: int = VERSION
    last_part: tuple[int, int] | None = field(default=None, compare=False)

    @property
    def next_msn(self) -> int:
        """Media sequence number of the segment after the last complete one."""
        return self.media_sequence + len(self.segments)

    def newest_part(self) -> tuple[int, int] | None:
        """(msn, part index) of the newest part the playlist knows of."""
        if self.last_part is not None:
            return self.last_part
        if self.partial is not None and self.partial.parts:
            return self.next_msn, len(self.partial.parts) - 1
        for offset in range(len(self.segments) - 1, -1, -1):
            parts = self.segments[offset].parts
            if parts:
                return self.media_sequence + offset, len(parts) - 1
        return None

    @property
    def duration(self) -> float:
        """Sum of the complete segments' durations."""
        return math.fsum(s.duration for s in self.segments)


@dataclass(frozen=True)
class RenderedPlaylist:
    """A playlist and its m3u8 text, published together so that readers never render."""

    playlist: MediaPlaylist
    text: str


# --- rendering -------------------------------------------------------------


def _num(value: float) -> str:
    # decimal-floating-point: no exponent; five places are 10 µs, finer than a sample at 48 kHz.
    return f"{value:.5f}"


def _quoted(value: str) -> str:
    if '"' in value or "\n" in value or "\r" in value:
        raise PlaylistError(f"a quoted-string cannot hold {value!r}")
    return f'"{value}"'


def _date(value: datetime) -> str:
    if value.tzinfo is None:
        raise PlaylistError("EXT-X-PROGRAM-DATE-TIME needs an aware datetime")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _part_lines(parts: tuple[Part, ...]) -> list[str]:
    return [
        f"#EXT-X-PART:DURATION={_num(p.duration)},URI={_quoted(p.uri)}"
        + (",INDEPENDENT=YES" if p.independent else "")
        for p in parts
    ]


def render(playlist: MediaPlaylist) -> str:
    """The m3u8 text of ``playlist`` (validated first; raises ``PlaylistError``)."""
    validate(playlist)
    p = playlist
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{p.version}", f"#EXT-X-TARGETDURATION:{p.target_duration}"]
    if p.playlist_type is not None:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{p.playlist_type}")
    control = []
    if p.can_block_reload:
        control.append("CAN-BLOCK-RELOAD=YES")
    if p.part_hold_back is not None:
        control.append(f"PART-HOLD-BACK={_num(p.part_hold_back)}")
    if control:
        lines.append("#EXT-X-SERVER-CONTROL:" + ",".join(control))
    if p.part_target is not None:
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={_num(p.part_target)}")
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{p.media_sequence}")
    if p.independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    if p.map_uri is not None:
        lines.append(f"#EXT-X-MAP:URI={_quoted(p.map_uri)}")
    for segment in p.segments:
        if segment.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_date(segment.program_date_time)}")
        lines.extend(_part_lines(segment.parts))
        lines.append(f"#EXTINF:{_num(segment.duration)},")
        lines.append(segment.uri)
    if p.partial is not None:
        if p.partial.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_date(p.partial.program_date_time)}")
        lines.extend(_part_lines(p.partial.parts))
    if p.preload_hint is not None:
        lines.append(f"#EXT-X-PRELOAD-HINT:TYPE=PART,URI={_quoted(p.preload_hint)}")
    if p.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def validate(playlist: MediaPlaylist) -> None:
    """Raise ``PlaylistError`` where ``playlist`` breaks a rule that players rely on."""
    p = playlist
    if p.target_duration < 1:
        raise PlaylistError("EXT-X-TARGETDURATION must be a positive integer")
    if p.media_sequence < 0:
        raise PlaylistError("EXT-X-MEDIA-SEQUENCE must not be negative")
    if p.playlist_type not in (None, "VOD", "EVENT"):
        raise PlaylistError(f"unknown EXT-X-PLAYLIST-TYPE {p.playlist_type!r}")
    if p.playlist_type == "VOD" and not p.ended:
        raise PlaylistError("a VOD playlist must end with EXT-X-ENDLIST")
    for segment in p.segments:
        # RFC 8216 4.3.3.1: each EXTINF rounded to the nearest integer <= target duration.
        if segment.duration < 0 or round(segment.duration) > p.target_duration:
            raise PlaylistError(
                f"segment {segment.uri} lasts {segment.duration} s, over the target duration"
            )
    all_parts = [part for s in p.segments for part in s.parts]
    if p.partial is not None:
        all_parts.extend(p.partial.parts)
    if all_parts or p.preload_hint is not None:
        if p.part_target is None:
            raise PlaylistError("EXT-X-PART needs EXT-X-PART-INF")
        for part in all_parts:
            if part.duration <= 0 or part.duration > p.part_target + 1e-9:
                raise PlaylistError(f"part {part.uri} lasts {part.duration} s, over PART-TARGET")
    if p.part_target is not None:
        if p.part_target <= 0:
            raise PlaylistError("PART-TARGET must be positive")
        # draft-pantos-hls-rfc8216bis 4.4.3.8: PART-HOLD-BACK at least twice PART-TARGET.
        if p.part_hold_back is None or p.part_hold_back < 2 * p.part_target - 1e-9:
            raise PlaylistError("PART-HOLD-BACK must be at least twice PART-TARGET")
    if p.ended and (p.partial is not None or p.preload_hint is not None):
        raise PlaylistError("an ended playlist has no partial segment and no preload hint")


# --- parsing ---------------------------------------------------------------

# RFC 8216 4.2: attribute-list = AttributeName=AttributeValue *("," ...);
# AttributeName = [A-Z0-9-]+; a value is a quoted-string ("..." without " or
# CR/LF), or an unquoted token without commas (numbers, enumerated strings).
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)')
# decimal-floating-point: [0-9]+.[0-9]+ (also accept an integer). Bounded:
# "9" * 400 is a valid decimal that float() turns into infinity, which then
# breaks round() in ``validate``; no duration we write needs more digits.
_DECIMAL = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,20})?")
_INTEGER = re.compile(r"[0-9]{1,18}")


def _attributes(value: str, line_no: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _ATTRIBUTE.match(value, pos)
        if match is None:
            raise PlaylistSyntaxError(f"line {line_no}: bad attribute list {value!r}")
        name, raw = match.group(1), match.group(2)
        if name in attrs:
            raise PlaylistSyntaxError(f"line {line_no}: attribute {name} given twice")
        attrs[name] = raw
        pos = match.end()
        if pos < len(value):
            if value[pos] != ",":
                raise PlaylistSyntaxError(f"line {line_no}: expected ',' in {value!r}")
            pos += 1
            if pos == len(value):
                raise PlaylistSyntaxError(f"line {line_no}: trailing ',' in {value!r}")
    return attrs


def _need_quoted(attrs: dict[str, str], name: str, line_no: int) -> str:
    raw = attrs.get(name)
    if raw is None or len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
        raise PlaylistSyntaxError(f"line {line_no}: {name} must be a quoted string")
    return raw[1:-1]


def _decimal(raw: str, line_no: int) -> float:
    if not _DECIMAL.fullmatch(raw):
        raise PlaylistSyntaxError(f"line {line_no}: {raw!r} is not a decimal number")
    return float(raw)


def _integer(raw: str, line_no: int) -> int:
    if not _INTEGER.fullmatch(raw):
        raise PlaylistSyntaxError(f"line {line_no}: {raw!r} is not an integer")
    return int(raw)


def _parse_date(raw: str, line_no: int) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise PlaylistSyntaxError(f"line {line_no}: bad date {raw!r}") from None
    if value.tzinfo is None:
        raise PlaylistSyntaxError(f"line {line_no}: date {raw!r} has no time zone")
    return value


def _parse_part(value: str, line_no: int) -> Part:
    attrs = _attributes(value, line_no)
    unknown = set(attrs) - {"DURATION", "URI", "INDEPENDENT"}
    if unknown:
        raise PlaylistSyntaxError(f"line {line_no}: EXT-X-PART attribute {sorted(unknown)[0]}")
    if "DURATION" not in attrs:
        raise PlaylistSyntaxError(f"line {line_no}: EXT-X-PART without DURATION")
    independent = attrs.get("INDEPENDENT", "NO")
    if independent not in ("YES", "NO"):
        raise PlaylistSyntaxError(f"line {line_no}: INDEPENDENT must be YES or NO")
    return Part(
        uri=_need_quoted(attrs, "URI", line_no),
        duration=_decimal(attrs["DURATION"], line_no),
        independent=independent == "YES",
    )


def parse(text: str) -> MediaPlaylist:
    """Read a media playlist made of the tags ``render`` writes.

    Returns the ``MediaPlaylist`` (validated) or raises ``PlaylistError``
    (``PlaylistSyntaxError`` when the text itself is malformed); never
    anything else.
    """
    if len(text) > MAX_PLAYLIST_BYTES:
        raise PlaylistSyntaxError("playlist too long")
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise PlaylistSyntaxError("playlist has too many lines")
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistSyntaxError("line 1: a playlist starts with #EXTM3U")
    version: int | None = None
    target: int | None = None
    sequence: int | None = None
    playlist_type: str | None = None
    can_block = False
    hold: float | None = None
    part_target: float | None = None
    independent = False
    map_uri: str | None = None
    segments: list[Segment] = []
    parts: list[Part] = []
    pdt: datetime | None = None
    duration: float | None = None
    preload_hint: str | None = None
    ended = False
    for line_no, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        if ended:
            raise PlaylistSyntaxError(f"line {line_no}: nothing may follow EXT-X-ENDLIST")
        if not line.startswith("#"):
            if duration is None:
                raise PlaylistSyntaxError(f"line {line_no}: URI without EXTINF")
            if any(c.isspace() for c in line):
                raise PlaylistSyntaxError(f"line {line_no}: URI with white space")
            segments.append(Segment(line, duration, tuple(parts), pdt))
            duration, pdt, parts = None, None, []
            continue
        if preload_hint is not None and line != "#EXT-X-ENDLIST":
            raise PlaylistSyntaxError(f"line {line_no}: {line[:40]!r} after EXT-X-PRELOAD-HINT")
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-VERSION" and version is None:
            version = _integer(value, line_no)
        elif tag == "#EXT-X-TARGETDURATION" and target is None:
            target = _integer(value, line_no)
        elif tag == "#EXT-X-MEDIA-SEQUENCE" and sequence is None and not segments and not parts:
            sequence = _integer(value, line_no)
        elif tag == "#EXT-X-PLAYLIST-TYPE" and playlist_type is None:
            if value not in ("VOD", "EVENT"):
                raise PlaylistSyntaxError(f"line {line_no}: unknown playlist type {value!r}")
            playlist_type = value
        elif tag == "#EXT-X-SERVER-CONTROL":
            attrs = _attributes(value, line_no)
            if set(attrs) - {"CAN-BLOCK-RELOAD", "PART-HOLD-BACK"}:
                raise PlaylistSyntaxError(f"line {line_no}: unknown EXT-X-SERVER-CONTROL field")
            if attrs.get("CAN-BLOCK-RELOAD", "YES") != "YES":
                raise PlaylistSyntaxError(f"line {line_no}: CAN-BLOCK-RELOAD must be YES")
            can_block = "CAN-BLOCK-RELOAD" in attrs
            if "PART-HOLD-BACK" in attrs:
                hold = _decimal(attrs["PART-HOLD-BACK"], line_no)
        elif tag == "#EXT-X-PART-INF":
            attrs = _attributes(value, line_no)
            if set(attrs) != {"PART-TARGET"}:
                raise PlaylistSyntaxError(f"line {line_no}: EXT-X-PART-INF needs PART-TARGET")
            part_target = _decimal(attrs["PART-TARGET"], line_no)
        elif tag == "#EXT-X-INDEPENDENT-SEGMENTS" and not value:
            independent = True
        elif tag == "#EXT-X-MAP":
            attrs = _attributes(value, line_no)
            if set(attrs) != {"URI"} or segments or parts or map_uri is not None:
                raise PlaylistSyntaxError(f"line {line_no}: one EXT-X-MAP with URI, at the top")
            map_uri = _need_quoted(attrs, "URI", line_no)
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            if pdt is not None or parts or duration is not None:
                raise PlaylistSyntaxError(f"line {line_no}: misplaced EXT-X-PROGRAM-DATE-TIME")
            pdt = _parse_date(value, line_no)
        elif tag == "#EXT-X-PART":
            if duration is not None:
                raise PlaylistSyntaxError(f"line {line_no}: EXT-X-PART between EXTINF and URI")
            parts.append(_parse_part(value, line_no))
        elif tag == "#EXTINF":
            number, comma, _title = value.partition(",")
            if not comma or duration is not None:
                raise PlaylistSyntaxError(f"line {line_no}: bad EXTINF")
            duration = _decimal(number, line_no)
        elif tag == "#EXT-X-PRELOAD-HINT":
            attrs = _attributes(value, line_no)
            if set(attrs) != {"TYPE", "URI"} or attrs["TYPE"] != "PART":
                raise PlaylistSyntaxError(f"line {line_no}: only TYPE=PART preload hints")
            preload_hint = _need_quoted(attrs, "URI", line_no)
        elif tag == "#EXT-X-ENDLIST" and not value:
            ended = True
        else:
            raise PlaylistSyntaxError(f"line {line_no}: unsupported or repeated {line[:40]!r}")
    if duration is not None:
        raise PlaylistSyntaxError("EXTINF without its URI at the end")
    if target is None:
        raise PlaylistSyntaxError("no EXT-X-TARGETDURATION")
    partial = PartialSegment(tuple(parts), pdt) if parts or pdt is not None else None
    result = MediaPlaylist(
        target_duration=target,
        media_sequence=sequence or 0,
        segments=tuple(segments),
        map_uri=map_uri,
        part_target=part_target,
        part_hold_back=hold,
        can_block_reload=can_block,
        partial=partial,
        preload_hint=preload_hint,
        playlist_type=playlist_type,
        independent_segments=independent,
        ended=ended,
        version=1 if version is None else version,
    )
    validate(result)
    return result


# --- blocking playlist reload ------------------------------------------------


class Blocking(enum.Enum):
    """What to do with a playlist request now."""

    READY = "ready"  # answer with the current playlist
    WAIT = "wait"  # hold the request until the playlist changes, then ask again


def advance_part_limit(part_target: float) -> int:
    """How many parts past the newest one a client may ask for (rfc8216bis 6.2.5.2)."""
    # "three divided by the Part Target Duration if the Part Target Duration
    # is less than one second, or three otherwise"
    return math.floor(3 / part_target) if part_target < 1 else 3


def parse_blocking_query(msn: str | None, part: str | None) -> tuple[int | None, int | None]:
    """Read ``_HLS_msn`` and ``_HLS_part`` query values; raise ``BlockingRequestError`` (400)."""
    values: list[int | None] = []
    for name, raw in (("_HLS_msn", msn), ("_HLS_part", part)):
        if raw is None:
            values.append(None)
        elif not _INTEGER.fullmatch(raw):
            raise BlockingRequestError(f"{name} must be a decimal integer")
        else:
            values.append(int(raw))
    return values[0], values[1]


def blocking_decision(playlist: MediaPlaylist, msn: int | None, part: int | None) -> Blocking:
    """Can a request with ``_HLS_msn=msn`` / ``_HLS_part=part`` be answered now?

    Per draft-pantos-hls-rfc8216bis 6.2.5.2: READY when the playlist already
    holds segment ``msn`` (or part ``part`` of it, or anything later), when it
    has ended, or when the request is not a blocking one; WAIT otherwise.
    Raises ``BlockingRequestError`` (400) for ``_HLS_part`` without
    ``_HLS_msn``, for an ``msn`` more than two segments past the last
    complete one, and for a part further ahead than the Advance Part Limit.
    """
    if msn is None:
        if part is not None:
            raise BlockingRequestError("_HLS_part without _HLS_msn")
        return Blocking.READY
    if msn < 0 or (part is not None and part < 0):
        raise BlockingRequestError("_HLS_msn and _HLS_part cannot be negative")
    last_complete = playlist.next_msn - 1
    if msn > last_complete + 2:
        raise BlockingRequestError(
            f"_HLS_msn={msn} is more than two segments past the last one ({last_complete})"
        )
    if playlist.ended:
        return Blocking.READY
    if part is None:
        return Blocking.READY if msn <= last_complete else Blocking.WAIT
    newest = playlist.newest_part()
    if newest is None:
        return Blocking.READY if msn <= last_complete else Blocking.WAIT
    newest_msn, newest_index = newest
    if playlist.part_target is not None:
        ahead = part - newest_index if msn == newest_msn else part + 1 if msn > newest_msn else 0
        if ahead > advance_part_limit(playlist.part_target):
            raise BlockingRequestError(
                f"_HLS_part={part} of segment {msn} is too far past the newest part"
            )
    return Blocking.READY if (msn, part) <= (newest_msn, newest_index) else Blocking.WAIT
