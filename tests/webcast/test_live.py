"""Live packager: parts and segments that decode back to what was pushed, at the right times."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from callbridge.webcast import fmp4
from callbridge.webcast.aac import AAC_FRAME
from callbridge.webcast.live import (
    INIT,
    LiveConfig,
    LiveSegmenter,
    LiveWebcast,
    media_position,
    part_name,
    segment_name,
)
from callbridge.webcast.playlist import parse
from tests.webcast.conftest import tone

RATE = 48_000
PRIMING = AAC_FRAME  # the encoder's one frame of delay, kept in the stream


def decode(directory: Path, names: list[str]) -> npt.NDArray[np.float32]:
    path = directory / "joined.mp4"
    path.write_bytes(
        (directory / INIT).read_bytes() + b"".join((directory / n).read_bytes() for n in names)
    )
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.sample_rate == RATE
        return np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])


def onset(samples: npt.NDArray[np.float32], threshold: float = 0.05) -> int:
    return int(np.argmax(np.abs(samples) > threshold))


def test_config_defaults_line_up() -> None:
    config = LiveConfig()
    assert config.part_duration == pytest.approx(0.32)  # 16 ticks, 15 AAC frames
    assert config.segment_duration == pytest.approx(1.92)
    assert config.target_duration == 2


def test_media_names() -> None:
    assert media_position(part_name(12, 3)) == (12, 3)
    assert media_position(segment_name(7)) == (7, None)
    for other in (
        "index.m3u8",
        "init.mp4",
        "part1.m4s",
        "seg-1.m4s",
        "../seg1.m4s",
        "seg1.m4s.tmp",
    ):
        assert media_position(other) is None


def test_segmenter_cuts_parts_and_segments_without_io() -> None:
    config = LiveConfig(window_segments=4)
    segmenter = LiveSegmenter(config, datetime(2026, 11, 24, 14, tzinfo=UTC))
    unit = b"\x21" * 10
    out = segmenter.add([unit] * 14)
    assert out == []
    first = segmenter.add([unit])
    assert [f.name for f in first] == ["part0.0.m4s"]
    out = first + segmenter.add([unit] * 15 * 5)
    assert [f.name for f in out][-2:] == ["part0.5.m4s", "seg0.m4s"]
    segment = out[-1].data
    assert segment == b"".join(f.data for f in out[:-1])
    playlist = segmenter.playlist()
    assert playlist.segments[0].uri == "seg0.m4s"
    assert playlist.preload_hint == "part1.0.m4s"
    assert playlist.newest_part() == (0, 5)
    # Eleven segments later: a sliding window of four, parts only on the recent ones.
    segmenter.add([unit] * 15 * 6 * 11 + [unit] * 15)
    playlist = segmenter.playlist()
    assert playlist.media_sequence == 8
    assert [s.uri for s in playlist.segments] == [segment_name(n) for n in range(8, 12)]
    assert [len(s.parts) for s in playlist.segments] == [6, 6, 6, 6]  # 4 × 1.92 s < 3 × 2 s + ...
    assert playlist.partial is not None and len(playlist.partial.parts) == 1
    assert playlist.segments[1].program_date_time == datetime(
        2026, 11, 24, 14, tzinfo=UTC
    ) + timedelta(seconds=9 * 1.92)
    # Segments a whole window behind the playlist's (8..11) may go: 0..3 here.
    expired = segmenter.take_expired()
    assert expired[:7] == ["seg0.m4s"] + [part_name(0, i) for i in range(6)]
    assert sorted({media_position(n)[0] for n in expired}) == [0, 1, 2, 3]  # type: ignore[index]
    assert segmenter.take_expired() == []  # each only once
    files = segmenter.finish([unit] * 3)
    assert [f.name for f in files] == ["part12.1.m4s", "seg12.m4s"]
    ended = segmenter.playlist()
    assert ended.ended and ended.preload_hint is None and ended.partial is None
    assert ended.segments[-1].duration == pytest.approx((15 + 3) * AAC_FRAME / RATE)


def test_fragment_data_offset_points_at_the_samples() -> None:
    data = fmp4.media_fragment(3, 1024 * 7, [b"ab", b"cde"], [1024, 1024])
    moof_size = int.from_bytes(data[:4], "big")
    assert data[moof_size + 4 : moof_size + 8] == b"mdat"
    assert data[moof_size + 8 :] == b"abcde"
    offset_at = data.index(b"trun") + 4 + 4 + 4  # after type, version/flags, sample count
    assert int.from_bytes(data[offset_at : offset_at + 4], "big") == moof_size + 8


def test_tone_comes_back_at_its_time(tmp_path: Path) -> None:
    start = 100  # the tone begins at frame 100: 2.000 s into the stream
    clock = iter([1_000_000.0]).__next__
    webcast = LiveWebcast(tmp_path, wall_clock=clock)
    for n in range(300):
        webcast.push(n, tone(n, start))
    webcast.close(timeout=30)
    assert webcast.error is None
    assert webcast.stats.frames == 300 and webcast.stats.dropped == 0
    playlist = parse((tmp_path / "index.m3u8").read_text())
    assert playlist.ended
    names = [s.uri for s in playlist.segments]
    # Numbered from the wall clock, so a webcast started again never reuses a name.
    first = playlist.media_sequence
    assert (
        abs(first * LiveConfig().segment_duration - 1_000_000.0) < 2 * LiveConfig().segment_duration
    )
    assert names == [f"seg{first + n}.m4s" for n in range(4)]
    # The first segment starts on the 1.92 s grid of the wall clock: silence leads in.
    lead = webcast.lead_frames
    aligned = first * LiveConfig().segment_duration
    assert lead == round((1_000_000.0 - PRIMING / RATE - aligned) / 0.020)
    assert sum(s.duration for s in playlist.segments) == pytest.approx(
        ((300 + lead) * 960 + PRIMING) / RATE, abs=AAC_FRAME / RATE
    )
    samples = decode(tmp_path, names)
    expected = (lead + start) * 960 + PRIMING
    assert abs(onset(samples) - expected) < 48  # within a millisecond
    # The tone itself: 1 kHz, the strongest bin of a window after the onset.
    window = samples[expected + 4800 : expected + 4800 + 4800]
    spectrum = np.abs(np.fft.rfft(window))
    assert np.argmax(spectrum) * RATE / len(window) == pytest.approx(1000, abs=10)
    # The program date-time of a segment is the wall time its audio was pushed.
    origin = datetime.fromtimestamp(aligned, UTC)
    assert (
        abs((origin + timedelta(seconds=(PRIMING + lead * 960) / RATE)).timestamp() - 1_000_000.0)
        < 0.011
    )  # within half a frame
    pdt = playlist.segments[2].program_date_time
    assert pdt is not None  # written to the millisecond
    assert abs((pdt - (origin + timedelta(seconds=2 * 1.92))).total_seconds()) < 0.001
    # The parts of a segment are its bytes, and decode alone to the same audio.
    seg1 = (tmp_path / names[1]).read_bytes()
    parts = [p.uri for p in playlist.segments[1].parts]
    assert seg1 == b"".join((tmp_path / p).read_bytes() for p in parts)
    assert not list(tmp_path.glob(".*.tmp"))


def test_skipped_ticks_become_silence(tmp_path: Path) -> None:
    webcast = LiveWebcast(tmp_path)
    for n in range(50):
        webcast.push(n, tone(n, 0))
    webcast.push(10, tone(10, 0))  # late: dropped
    for n in range(100, 150):  # ticks 50-99 skipped
        webcast.push(n, tone(n, 0))
    webcast.close(timeout=30)
    assert webcast.stats.filled == 50 and webcast.stats.late == 1 and webcast.stats.frames == 150
    playlist = parse((tmp_path / "index.m3u8").read_text())
    samples = decode(tmp_path, [s.uri for s in playlist.segments])
    start = PRIMING + webcast.lead_frames * 960  # the first frame pushed, after the lead
    gap = samples[start + 50 * 960 + 480 : start + 100 * 960 - 480]
    assert np.abs(gap).max() < 0.01
    assert np.abs(samples[start + 100 * 960 + 480 :][:4800]).max() > 0.2


def on_the_grid() -> float:
    """A wall clock a millisecond past a segment's start on the shared grid (with the
    encoder's priming): the webcast then leads in with no silence. Otherwise the lead-in
    (``LiveWebcast._timeline``, up to a segment) depends on when the test runs."""
    segment = LiveConfig().segment_duration
    return (1_800_000_000 // segment) * segment + PRIMING / LiveConfig().sample_rate + 0.001


def test_live_playlist_updates_and_notifies(tmp_path: Path) -> None:
    updates: list[int] = []
    webcast = LiveWebcast(tmp_path, wall_clock=on_the_grid)
    webcast.on_update = lambda: updates.append(webcast.stats.parts)
    assert webcast.snapshot() is None
    for n in range(16 * 5):  # four parts out (the encoder holds a frame back): no segment yet
        webcast.push(n, tone(n, 0))
    deadline = time.monotonic() + 10
    while webcast.stats.parts < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert webcast.snapshot() is None and not (tmp_path / "index.m3u8").exists()
    # The encoder and resampler hold back a little: a few ticks more close part 1.0.
    for n in range(16 * 5, 16 * 7 + 4):
        webcast.push(n, tone(n, 0))
    deadline = time.monotonic() + 10
    msn = -1  # the first segment's number, from the wall clock
    while time.monotonic() < deadline:
        snapshot = webcast.snapshot()
        if snapshot is not None and snapshot.playlist.newest_part() == (msn + 1, 0):
            break
        if snapshot is not None:
            msn = snapshot.playlist.media_sequence
        time.sleep(0.01)
    assert snapshot is not None
    assert snapshot.text == (tmp_path / "index.m3u8").read_text()
    assert snapshot.playlist.preload_hint == f"part{msn + 1}.1.m4s"
    assert snapshot.playlist.newest_part() == (msn + 1, 0)
    assert updates[0] == 6  # from the first whole segment on
    webcast.close(timeout=30)
    assert webcast.snapshot() is not None and webcast.snapshot().playlist.ended  # type: ignore[union-attr]
    assert len(updates) >= 3


def test_push_is_cheap_and_bounded(tmp_path: Path) -> None:
    webcast = LiveWebcast(tmp_path, LiveConfig(max_pending_frames=100))
    frame = tone(1, 0)
    began = time.perf_counter()
    for n in range(2000):
        webcast.push(n, frame)
    per_push = (time.perf_counter() - began) / 2000
    webcast.close(timeout=60)
    assert per_push < 200e-6  # a few µs in practice; generous for a loaded machine
    assert webcast.stats.dropped + webcast.stats.frames + webcast.stats.late >= 2000 - 1
    assert webcast.stats.dropped > 0  # the queue held at most 100 frames at a time
    webcast.push(2000, frame)  # after close: counted, ignored
    assert webcast.error is None


def test_files_a_window_behind_the_playlist_are_deleted(tmp_path: Path) -> None:
    config = LiveConfig(part_units=5, parts_per_segment=2, window_segments=2)
    webcast = LiveWebcast(tmp_path, config)
    ticks = 16 * 12  # 12 segments of 10 AAC frames (a little over 0.2 s each)
    for n in range(ticks):
        webcast.push(n, tone(n, 0))
    webcast.close(timeout=30)
    snapshot = webcast.snapshot()
    assert snapshot is not None
    listed = [media_position(s.uri)[0] for s in snapshot.playlist.segments]  # type: ignore[index]
    newest = max(listed)
    assert newest >= 8
    on_disk = {media_position(p.name)[0] for p in tmp_path.glob("*.m4s")}  # type: ignore[index]
    # What the playlist names and one more window stay; everything older is gone.
    assert on_disk == set(range(newest - 2 * config.window_segments + 1, newest + 1))
    for segment in listed:
        assert (tmp_path / segment_name(segment)).is_file()


def _tfdt(data: bytes) -> int:
    at = data.index(b"tfdt") + 4 + 4  # after the type and version/flags
    return int.from_bytes(data[at : at + 8], "big")


def test_two_packagers_started_apart_cut_the_same_segments_of_the_same_moment(
    tmp_path: Path,
) -> None:
    """An active and a standby origin package one call: the standby started 0.7 s later, its
    ticks numbered from another start. Their segments of one moment have one name, one
    program date-time and one decode time: a cache failing over from one to the other
    serves a playlist that goes on."""
    made = {}
    for name, wall, first_tick, frames in (
        ("a", 1_000_000.0, 0, 400),
        ("b", 1_000_000.7, 9_035, 365),
    ):
        webcast = LiveWebcast(tmp_path / name, wall_clock=iter([wall]).__next__)
        for n in range(frames):
            webcast.push(first_tick + n, tone(n, 0))
        webcast.close(timeout=30)
        assert webcast.error is None
        playlist = parse((tmp_path / name / "index.m3u8").read_text())
        made[name] = {
            s.uri: (s.program_date_time, _tfdt((tmp_path / name / s.uri).read_bytes()))
            for s in playlist.segments[:-1]  # the last was cut short by the end
        }
    shared = set(made["a"]) & set(made["b"])
    assert len(shared) >= 2, made
    for uri in shared:
        assert made["a"][uri][1] == made["b"][uri][1], uri
        pdt_a, pdt_b = made["a"][uri][0], made["b"][uri][0]
        assert pdt_a is not None and pdt_b is not None
        assert abs((pdt_a - pdt_b).total_seconds()) < 0.001
