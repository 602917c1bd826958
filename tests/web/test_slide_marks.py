"""The live playlist's slide marks: EXT-X-DATERANGE tags after the media sequence, latest few."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbridge.store.slides import SlideChange
from callbridge.web.slide_marks import PLAYLIST_CHANGES, SlideBoard

PLAYLIST = (
    "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-05T21:30:00.000Z\n#EXTINF:1.92,\nseg41.m4s\n"
)
T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def test_changes_are_marked_after_the_media_sequence_with_their_start_date() -> None:
    board = SlideBoard()
    board.load(7, [SlideChange(1, T0, "dana")])
    board.add(7, SlideChange(2, T0 + timedelta(seconds=1.5), "dana"))
    marked = board.mark(7, PLAYLIST)
    lines = marked.splitlines()
    assert lines[3] == "#EXT-X-MEDIA-SEQUENCE:41"
    assert lines[4] == (
        '#EXT-X-DATERANGE:ID="slide-7-1793914200000",CLASS="com.callbridge.slide",'
        'START-DATE="2026-11-05T21:30:00.000Z",X-CB-SLIDE=1'
    )
    assert 'START-DATE="2026-11-05T21:30:01.500Z",X-CB-SLIDE=2' in lines[5]
    assert lines[6:] == PLAYLIST.splitlines()[4:]


def test_only_the_latest_changes_ride_on_the_playlist_and_others_are_untouched() -> None:
    board = SlideBoard()
    board.load(7, [SlideChange(n, T0 + timedelta(seconds=n), "dana") for n in range(1, 9)])
    marked = board.mark(7, PLAYLIST)
    assert marked.count("#EXT-X-DATERANGE") == PLAYLIST_CHANGES
    assert "X-CB-SLIDE=8" in marked and "X-CB-SLIDE=5" not in marked
    assert board.mark(8, PLAYLIST) == PLAYLIST  # another event: nothing to mark
    assert board.mark(7, "#EXTM3U\n") == "#EXTM3U\n"  # no media sequence: left as it is
