"""Media playlist: every tag rendered, validation, parse round trip, blocking-reload rules."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.webcast.playlist import (
    Blocking,
    BlockingRequestError,
    MediaPlaylist,
    Part,
    PartialSegment,
    PlaylistError,
    PlaylistSyntaxError,
    Segment,
    advance_part_limit,
    blocking_decision,
    parse,
    parse_blocking_query,
    render,
)

T0 = datetime(2026, 11, 24, 14, 0, 0, tzinfo=UTC)


def _parts(msn: int, count: int) -> tuple[Part, ...]:
    return tuple(Part(f"part{msn}.{i}.m4s", 0.32) for i in range(count))


def live(complete: int = 3, in_progress: int = 2, **kw: object) -> MediaPlaylist:
    """A live playlist of ``complete`` 6-part segments and a segment with ``in_progress`` parts."""
    values: dict[str, object] = dict(
        target_duration=2,
        media_sequence=10,
        segments=tuple(
            Segment(f"seg{10 + i}.m4s", 1.92, _parts(10 + i, 6), T0 + timedelta(seconds=1.92 * i))
            for i in range(complete)
        ),
        map_uri="init.mp4",
        part_target=0.32,
        part_hold_back=0.96,
        can_block_reload=True,
        partial=PartialSegment(_parts(10 + complete, in_progress), T0),
        preload_hint=f"part{10 + complete}.{in_progress}.m4s",
    )
    values.update(kw)
    return MediaPlaylist(**values)  # type: ignore[arg-type]


def test_live_playlist_has_every_low_latency_tag() -> None:
    text = render(live())
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-VERSION:6" in lines
    assert "#EXT-X-TARGETDURATION:2" in lines
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.96000" in lines
    assert "#EXT-X-PART-INF:PART-TARGET=0.32000" in lines
    assert "#EXT-X-MEDIA-SEQUENCE:10" in lines
    assert '#EXT-X-MAP:URI="init.mp4"' in lines
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-11-24T14:00:00.000Z" in lines
    assert '#EXT-X-PART:DURATION=0.32000,URI="part10.0.m4s",INDEPENDENT=YES' in lines
    assert lines.count("#EXTINF:1.92000,") == 3
    assert lines[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part13.2.m4s"'
    assert "#EXT-X-ENDLIST" not in lines
    # Parts of a segment come before its EXTINF; the in-progress parts after the last URI.
    assert lines.index('#EXT-X-PART:DURATION=0.32000,URI="part12.5.m4s",INDEPENDENT=YES') < (
        lines.index("seg12.m4s")
    )
    assert lines.index("seg12.m4s") < lines.index(
        '#EXT-X-PART:DURATION=0.32000,URI="part13.0.m4s",INDEPENDENT=YES'
    )
    assert text.endswith("\n")


def test_vod_playlist() -> None:
    vod = MediaPlaylist(
        target_duration=6,
        segments=(Segment("seg0.m4s", 5.952), Segment("seg1.m4s", 1.5)),
        map_uri="init.mp4",
        playlist_type="VOD",
        ended=True,
    )
    lines = render(vod).splitlines()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert not any(line.startswith(("#EXT-X-PART", "#EXT-X-SERVER")) for line in lines)
    assert vod.duration == pytest.approx(7.452)


@pytest.mark.parametrize(
    "broken",
    [
        live(target_duration=1),  # 1.92 s rounds to 2 > 1
        live(part_target=0.2),  # parts of 0.32 s
        live(part_hold_back=0.5),  # less than twice the part target
        live(part_hold_back=None),
        live(part_target=None),
        live(ended=True),  # an ended playlist with a preload hint
        live(map_uri='a"b'),
        live(playlist_type="LIVE"),
        MediaPlaylist(target_duration=6, playlist_type="VOD"),  # VOD without ENDLIST
        MediaPlaylist(target_duration=0),
        MediaPlaylist(target_duration=2, media_sequence=-1),
        MediaPlaylist(target_duration=2, segments=(Segment("a", 1, (), datetime(2026, 1, 1)),)),
    ],
)
def test_validation_rejects(broken: MediaPlaylist) -> None:
    with pytest.raises(PlaylistError):
        render(broken)


def test_parse_reads_back_a_live_playlist() -> None:
    playlist = live()
    parsed = parse(render(playlist))
    assert parsed == playlist
    assert parsed.newest_part() == (13, 1)


# --- round trip and fuzz ---------------------------------------------------------

_uri = st.from_regex(r"[a-z0-9]{1,8}\.m4s", fullmatch=True)
_duration = st.integers(1, 32_000).map(lambda n: n / 100_000)  # up to 0.32 s, exact in 5 places
_date = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
_part = st.builds(Part, _uri, _duration, st.booleans())


@st.composite
def playlists(draw: st.DrawFn) -> MediaPlaylist:
    ended = draw(st.booleans())
    segments = draw(
        st.lists(
            st.builds(
                Segment,
                _uri,
                st.integers(0, 600_000).map(lambda n: n / 100_000),
                st.lists(_part, max_size=4).map(tuple),
                st.none() | _date,
            ),
            max_size=6,
        )
    )
    partial = None
    hint = None
    if not ended:
        partial = draw(
            st.none()
            | st.builds(PartialSegment, st.lists(_part, min_size=1, max_size=4).map(tuple), _date)
        )
        hint = draw(st.none() | _uri)
    ll = bool(hint or partial or any(s.parts for s in segments)) or draw(st.booleans())
    return MediaPlaylist(
        target_duration=draw(st.integers(6, 10)),
        media_sequence=draw(st.integers(0, 10**9)),
        segments=tuple(segments),
        map_uri=draw(st.none() | _uri),
        part_target=0.32 if ll else None,
        part_hold_back=draw(st.sampled_from([0.64, 0.96, 1.5])) if ll else None,
        can_block_reload=draw(st.booleans()),
        partial=partial,
        preload_hint=hint,
        playlist_type=draw(st.sampled_from(["VOD", None, "EVENT"])) if ended else None,
        independent_segments=draw(st.booleans()),
        ended=ended,
        version=draw(st.integers(1, 12)),
    )


@given(playlists())
def test_round_trip(playlist: MediaPlaylist) -> None:
    text = render(playlist)
    assert parse(text) == playlist
    assert render(parse(text)) == text


@settings(deadline=None, max_examples=50)
@given(playlists(), st.data())
def test_parser_only_raises_its_own_errors_on_truncated_and_mangled_text(
    playlist: MediaPlaylist, data: st.DataObject
) -> None:
    text = render(playlist)
    for cut in range(0, len(text), max(1, len(text) // 300)):
        with contextlib.suppress(PlaylistError):
            parse(text[:cut])
    position = data.draw(st.integers(0, len(text) - 1))
    junk = data.draw(st.text(max_size=5))
    with contextlib.suppress(PlaylistError):
        parse(text[:position] + junk + text[position + 1 :])


@given(st.text(max_size=300))
def test_parser_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(PlaylistError):
        parse("#EXTM3U\n" + text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "#EXTM3\n",
        "#EXTM3U\n",  # no target duration
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\nseg0.m4s\n",  # URI without EXTINF
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n",  # EXTINF without URI
        "#EXTM3U\n#EXT-X-TARGETDURATION:x\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-TARGETDURATION:2\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-ENDLIST\n#EXTINF:1.0,\na\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.3\n"
        '#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=1.0\n#EXT-X-PART:URI="a"\n',  # no DURATION
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=init.mp4\n",  # unquoted URI
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=NO\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=NONE\n",  # not ours
        "#EXTM3U\n" + "#EXT-X-TARGETDURATION:2\n" * 2,
    ],
)
def test_parser_rejects(text: str) -> None:
    with pytest.raises(PlaylistSyntaxError):
        parse(text)


# --- blocking reload ----------------------------------------------------------------


def test_advance_part_limit() -> None:
    assert advance_part_limit(0.32) == 9  # 3 / 0.32 = 9.4
    assert advance_part_limit(0.5) == 6
    assert advance_part_limit(1.0) == 3
    assert advance_part_limit(2.0) == 3


def test_not_a_blocking_request_is_answered_at_once() -> None:
    assert blocking_decision(live(), None, None) is Blocking.READY


@pytest.mark.parametrize(
    ("msn", "part", "expected"),
    [
        (9, None, Blocking.READY),  # before the window
        (12, None, Blocking.READY),  # the last complete segment
        (13, None, Blocking.WAIT),  # in progress
        (14, None, Blocking.WAIT),  # next, allowed: last complete + 2
        (13, 0, Blocking.READY),
        (13, 1, Blocking.READY),  # the newest part
        (13, 2, Blocking.WAIT),  # the preload hint
        (13, 5, Blocking.WAIT),
        (12, 5, Blocking.READY),
        (12, 9, Blocking.READY),  # past the end of a complete segment, and 13 has parts
        (14, 0, Blocking.WAIT),
        (10, 0, Blocking.READY),
    ],
)
def test_blocking_decision(msn: int, part: int | None, expected: Blocking) -> None:
    assert blocking_decision(live(), msn, part) is expected


def test_part_past_a_complete_segment_waits_for_the_next_segment() -> None:
    playlist = live(complete=3, in_progress=0, partial=None, preload_hint="part13.0.m4s")
    assert playlist.newest_part() == (12, 5)
    assert blocking_decision(playlist, 12, 5) is Blocking.READY
    assert blocking_decision(playlist, 12, 6) is Blocking.WAIT
    assert blocking_decision(playlist, 13, 0) is Blocking.WAIT
    assert blocking_decision(playlist, 13, None) is Blocking.WAIT


@pytest.mark.parametrize(
    ("msn", "part"),
    [
        (None, 0),  # _HLS_part without _HLS_msn
        (15, None),  # more than two segments past the last complete one (12)
        (15, 0),
        (13, 11),  # ten parts past the newest (13.1), limit 9
        (14, 9),
        (-1, None),
    ],
)
def test_blocking_requests_answered_400(msn: int | None, part: int | None) -> None:
    with pytest.raises(BlockingRequestError) as caught:
        blocking_decision(live(), msn, part)
    assert caught.value.status == 400


def test_ended_playlist_answers_at_once() -> None:
    ended = live(partial=None, preload_hint=None, ended=True)
    assert blocking_decision(ended, 13, 0) is Blocking.READY
    assert blocking_decision(ended, 14, None) is Blocking.READY
    with pytest.raises(BlockingRequestError):
        blocking_decision(ended, 15, None)


def test_parse_blocking_query() -> None:
    assert parse_blocking_query("12", "3") == (12, 3)
    assert parse_blocking_query(None, None) == (None, None)
    for bad in ("-1", "1.5", "", "x", "1" * 30):
        with pytest.raises(BlockingRequestError):
            parse_blocking_query(bad, None)


@pytest.mark.parametrize(
    "change",
    [
        ("#EXTINF:1.92000,", "#EXTINF:" + "9" * 400 + ","),  # float() gives infinity
        ("#EXTINF:1.92000,", "#EXTINF:1.9²,"),
        ("#EXTINF:1.92000,", "#EXTINF:١.92000,"),
        ("#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:２"),
        ("#EXT-X-MEDIA-SEQUENCE:10", "#EXT-X-MEDIA-SEQUENCE:1" + "0" * 5000),
        ("PART-TARGET=0.32000", "PART-TARGET=0.3²"),
    ],
)
def test_numbers_are_ascii_and_bounded(change: tuple[str, str]) -> None:
    with pytest.raises(PlaylistSyntaxError):
        parse(render(live()).replace(*change, 1))


@pytest.mark.parametrize("raw", ["²", "٣", "1٣", "1" * 19, "-1", "+1", " 1", "1.0", ""])
def test_blocking_query_takes_ascii_integers_only(raw: str) -> None:
    with pytest.raises(BlockingRequestError) as error:
        parse_blocking_query(raw, None)
    assert error.value.status == 400
    with pytest.raises(BlockingRequestError):
        parse_blocking_query("12", raw)
