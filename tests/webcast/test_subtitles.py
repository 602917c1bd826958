"""The live captions' subtitle rendition: segments on the audio's timeline, late cues shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbridge.media.mixer import SAMPLE_RATE
from callbridge.transcript.live import LiveCue
from callbridge.transcript.vtt import parse_vtt
from callbridge.webcast.live import LiveConfig
from callbridge.webcast.playlist import parse
from callbridge.webcast.subtitles import (
    MASTER,
    SUBTITLES,
    SubtitleConfig,
    SubtitleTrack,
    master_playlist,
    segment_vtt,
    subtitle_name,
)

RATE = SAMPLE_RATE  # the caption clock counts samples of the 16 kHz mix
ORIGIN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
PRIMING_S = 1024 / 48_000
# The bridge's packager settings: 10 AAC frames a part, 9 parts a segment (1.92 s).
AUDIO = LiveConfig(part_units=10, parts_per_segment=9)


def track(first_msn: int = 0) -> SubtitleTrack:
    return SubtitleTrack(SubtitleConfig(), ORIGIN, first_msn, PRIMING_S)


def files(out: list) -> dict[str, bytes]:  # type: ignore[type-arg]
    return {f.name: f.data for f in out}


def test_subtitle_segments_split_audio_segments_evenly() -> None:
    config = SubtitleConfig()
    per_segment = AUDIO.segment_duration / config.segment_s
    assert abs(per_segment - round(per_segment)) < 1e-9
    # Three subtitle parts of 0.64 s per audio segment: every audio boundary is a subtitle one.
    assert round(per_segment) == 3


def test_master_playlist_names_audio_and_subtitles() -> None:
    text = master_playlist()
    assert text.startswith("#EXTM3U\n")
    assert 'TYPE=SUBTITLES,GROUP-ID="subs"' in text and f'URI="{SUBTITLES}"' in text
    assert 'SUBTITLES="subs"' in text and 'CODECS="mp4a.40.2"' in text
    assert text.rstrip().endswith("index.m3u8")
    assert MASTER == "master.m3u8"


def test_a_segment_waits_for_the_horizon_then_the_edge() -> None:
    subs = track()
    # The edge is 1 s in but speech began at 0.3 s: nothing is out yet.
    assert subs.advance(horizon=int(0.3 * RATE), edge=1 * RATE) == []
    # The worker is done with the speech: segments up to the horizon go out, playlist last.
    out = subs.advance(horizon=int(1.4 * RATE), edge=int(1.5 * RATE))
    assert [f.name for f in out] == [subtitle_name(0), subtitle_name(1), SUBTITLES]
    # A worker stuck on a piece does not hold the subtitles back past wait_s behind the edge.
    out = subs.advance(horizon=int(1.4 * RATE), edge=int(4.0 * RATE))
    names = [f.name for f in out]
    assert names[-1] == SUBTITLES
    assert subtitle_name(subs.published - 1) in names
    assert (subs.published) * 0.64 <= 4.0 - 0.8 + PRIMING_S + 1e-9


def test_a_cue_is_in_every_segment_it_overlaps_with_the_same_times() -> None:
    subs = track(first_msn=3 * 1000)
    cue = LiveCue(
        start=int(0.5 * RATE),
        end=int(2.0 * RATE),
        text="Good morning & welcome",
        ready=int(2.3 * RATE),
    )
    timed = subs.add(cue, edge=int(2.3 * RATE))
    assert timed.start == round(PRIMING_S + 0.5, 3)
    # Shown until hold_s after it was made: 2.3 + 3.0 s.
    assert timed.end == round(PRIMING_S + 2.3 + 3.0, 3)
    out = files(subs.finish(int(6.0 * RATE)))
    holding = [name for name, data in out.items() if name.endswith(".vtt") and b"-->" in data]
    assert subtitle_name(3000) in holding and subtitle_name(3008) in holding
    times = set()
    for name in holding:
        text = out[name].decode()
        # One map for every segment: decode time zero.
        assert "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000" in text
        (parsed,) = parse_vtt(text)
        assert parsed.text == "Good morning & welcome"
        times.add((parsed.start, parsed.end))
    assert times == {(timed.start, timed.end)}
    assert b"&amp;" in out[holding[0]]


def test_a_late_cue_goes_in_the_segments_still_to_come() -> None:
    subs = track()
    subs.advance(horizon=0, edge=int(10.0 * RATE))  # the worker was stuck: 8 s went out empty
    published = subs.published
    # The words were 1-3 s; the cue came at 10 s: it shows from then, for hold_s.
    cue = LiveCue(start=1 * RATE, end=3 * RATE, text="late words", ready=int(9.0 * RATE))
    timed = subs.add(cue, edge=int(10.0 * RATE))
    assert timed.end == round(PRIMING_S + 10.0 + 3.0, 3)
    out = files(subs.advance(horizon=int(12.0 * RATE), edge=int(12.0 * RATE)))
    first_new = subtitle_name(published)
    assert b"late words" in out[first_new]


def test_the_subtitle_playlist_is_live_then_ends() -> None:
    subs = track(first_msn=42)
    out = files(subs.advance(horizon=5 * RATE, edge=5 * RATE))
    playlist = parse(out[SUBTITLES].decode())
    assert playlist.target_duration == 1
    assert playlist.media_sequence == 42
    assert not playlist.ended
    assert [s.uri for s in playlist.segments][:2] == [subtitle_name(42), subtitle_name(43)]
    first = playlist.segments[0]
    assert first.program_date_time == ORIGIN
    assert playlist.segments[1].program_date_time == ORIGIN + timedelta(seconds=0.64)
    end = files(subs.finish(int(5.5 * RATE)))
    assert parse(end[SUBTITLES].decode()).ended
    assert subs.advance(horizon=9 * RATE, edge=9 * RATE) == []


def test_the_playlist_keeps_a_window_and_old_segments_expire() -> None:
    config = SubtitleConfig(window_segments=5)
    subs = SubtitleTrack(config, ORIGIN, 0, 0.0)
    subs.advance(horizon=20 * RATE, edge=20 * RATE)
    playlist = parse(subs.playlist())
    assert len(playlist.segments) == 5
    assert playlist.media_sequence == subs.published - 5
    assert subs.expired(9) == []
    assert subs.expired(10) == [subtitle_name(0)]


def test_the_live_text_is_on_the_calls_clock() -> None:
    subs = track()
    subs.add(LiveCue(RATE, 2 * RATE, "hello", 2 * RATE, "Speaker"), edge=2 * RATE)
    (cue,) = parse_vtt(subs.as_vtt(-PRIMING_S))
    assert cue.start == 1.0 and cue.voice == "Speaker"


def test_an_empty_segment_is_valid_webvtt() -> None:
    assert parse_vtt(segment_vtt(0.64, []).decode()) == []


def test_a_new_cue_goes_out_at_once_with_every_segment_the_edge_has_passed() -> None:
    subs = SubtitleTrack(SubtitleConfig(), ORIGIN, 0, 0.0)
    subs.advance(horizon=0, edge=2 * RATE)  # (2 - 0.8) / 0.64: one segment out
    assert subs.published == 1
    cue = LiveCue(int(0.5 * RATE), int(1.5 * RATE), "revenue grew", 2 * RATE)
    subs.add(cue, 2 * RATE)
    out = subs.publish_to_edge(2 * RATE)
    # Segments 1 and 2 (to 1.92 s) go now, not at 2.72 s; both carry the cue.
    assert [f.name for f in out] == [subtitle_name(1), subtitle_name(2), SUBTITLES]
    for segment in out[:2]:
        assert [c.text for c in parse_vtt(segment.data.decode())] == ["revenue grew"]
    assert subs.publish_to_edge(2 * RATE) == []  # nothing new
    # The segment in progress is not out: the next one carries the cue too.
    (next_out,) = [f for f in subs.advance(0, int(3.5 * RATE)) if f.name != SUBTITLES]
    assert [c.text for c in parse_vtt(next_out.data.decode())] == ["revenue grew"]


def test_a_timeline_hours_in_starts_its_segments_there() -> None:
    # The audio's decode timeline starts on the shared grid, hours in (webcast.live's
    # _timeline), plus the priming: segment 0 starts there, not at decode time zero.
    config = SubtitleConfig()
    decode_start = 30_000 * 1.92
    subs = SubtitleTrack(config, ORIGIN, 90_000, decode_start + PRIMING_S)
    assert subs.base_s == decode_start
    out = subs.advance(horizon=int(1.4 * RATE), edge=int(1.5 * RATE))
    assert [f.name for f in out] == [subtitle_name(90_000), subtitle_name(90_001), SUBTITLES]
    playlist = parse(subs.playlist())
    assert playlist.media_sequence == 90_000
    assert playlist.segments[0].program_date_time == ORIGIN
    assert playlist.segments[1].program_date_time == ORIGIN + timedelta(seconds=0.64)
    cue = subs.add(LiveCue(start=int(0.1 * RATE), end=int(0.9 * RATE), text="Hi.", ready=0))
    assert abs(cue.start - (decode_start + PRIMING_S + 0.1)) < 1e-3


def test_a_revision_replaces_cues_whose_segments_are_not_out_yet() -> None:
    subs = SubtitleTrack(SubtitleConfig(), ORIGIN, 0, 0.0)
    first = subs.add(LiveCue(int(0.5 * RATE), int(1.5 * RATE), "revenue grew to 42.", RATE))
    second = subs.add(LiveCue(int(1.6 * RATE), int(2.5 * RATE), "million dollars.", RATE))
    # The horizon held the segments back (an earlier piece still decoding): none is out.
    assert subs.published == 0
    settled = LiveCue(int(0.5 * RATE), int(2.5 * RATE), "revenue grew to $42 million.", 3 * RATE)
    timed = subs.revise(settled, [first, second], edge=3 * RATE)
    assert timed is not None and timed.start == first.start
    out = subs.advance(horizon=6 * RATE, edge=6 * RATE)
    shown = {c.text for f in out if f.name != SUBTITLES for c in parse_vtt(f.data.decode())}
    assert shown == {"revenue grew to $42 million."}
    assert [c.text for c in parse_vtt(subs.as_vtt())] == ["revenue grew to $42 million."]


def test_a_revision_leaves_the_published_text_as_it_was() -> None:
    subs = SubtitleTrack(SubtitleConfig(), ORIGIN, 0, 0.0)
    first = subs.add(LiveCue(int(0.5 * RATE), int(1.5 * RATE), "revenue grew to 42.", 2 * RATE))
    subs.publish_to_edge(2 * RATE)  # the cue went out with the segments to the edge
    second = subs.add(LiveCue(int(1.6 * RATE), int(2.5 * RATE), "million dollars.", 3 * RATE))
    settled = LiveCue(int(0.5 * RATE), int(2.5 * RATE), "revenue grew to $42 million.", 4 * RATE)
    # Players have the first cue: shown again beside it, the words would come twice.
    assert subs.revise(settled, [first, second], edge=4 * RATE) is None
    out = subs.advance(horizon=8 * RATE, edge=8 * RATE)
    shown = {c.text for f in out if f.name != SUBTITLES for c in parse_vtt(f.data.decode())}
    assert shown == {"revenue grew to 42.", "million dollars."}
