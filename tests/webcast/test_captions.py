"""The live captions' host: a real worker process on pipes, its restarts, and a clock never held.

The worker here is a small stand-in process that reads the worker's protocol
with the worker's own reader and writes through the worker's own files
(``CaptionFiles``), with no engine: a cue for every second of mix it reads,
named as the real worker names it (``transcript.speaking``).
The real worker is tested in tests/transcript/test_live.py and end to end in
tests/telephony/test_live_captions.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from callbridge.store import layout
from callbridge.transcript.live import LiveCue
from callbridge.transcript.vtt import parse_vtt
from callbridge.webcast.captions import (
    LIVE_VTT,
    STATUS,
    TRANSCRIPT,
    CaptionFiles,
    LiveCaptions,
    end_playlist,
    read_transcript,
    transcript_vtt,
)
from callbridge.webcast.playlist import parse
from callbridge.webcast.subtitles import MASTER, SUBTITLES, SubtitleConfig

FRAME = 320  # the mix's 20 ms at 16 kHz
RATE = 16_000
ORIGIN = datetime(2026, 11, 29, 12, tzinfo=UTC)

# Reads the records; after each whole second of mix, a cue for it; the horizon at the edge.
STAND_IN = r"""
import queue, sys, threading
from callbridge.transcript.live import LiveCue
from callbridge.transcript.speaking import SpeakerTimeline, Talkers
from callbridge.webcast.caption_worker import Outlet, read_chunks
outlet = Outlet(sys.stdout)
chunks = queue.Queue(100000)
threading.Thread(target=read_chunks, args=(sys.stdin.buffer, chunks, [0], outlet)).start()
next_cue = None
speakers = SpeakerTimeline()
while (item := chunks.get()) is not None:
    if isinstance(item, Talkers):
        speakers.add(item)
        continue
    offset, samples = item
    end = offset + len(samples)
    if next_cue is None:
        next_cue = (offset // 16000 + 1) * 16000
    files = outlet.files
    if files is None:
        continue
    if end >= next_cue:
        name = speakers.label(next_cue - 16000, next_cue)
        files.add(LiveCue(next_cue - 16000, next_cue, "second %d" % (next_cue // 16000), end, name))
        next_cue += 16000
    files.advance(end)
if outlet.files is not None:
    outlet.files.finish()
"""

STALLED = "import time\ntime.sleep(60)\n"


def stand_in() -> list[str]:
    return [sys.executable, "-c", STAND_IN]


def wait_for(predicate, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


def push_seconds(
    captions: LiveCaptions,
    start: int,
    seconds: float,
    pace: bool = True,
    talkers: frozenset[str] = frozenset(),
) -> int:
    frame = np.full(FRAME, 1000, np.int16)
    offset = start
    for _ in range(int(seconds * RATE / FRAME)):
        captions.push(offset, frame, talkers)
        offset += FRAME
        if pace:
            time.sleep(0.002)
    return offset


def begin(captions: LiveCaptions) -> None:
    captions.begin(ORIGIN, 1000, 1.92, 1024 / 48_000)


def test_cues_become_subtitles_and_the_console_transcript(tmp_path: Path) -> None:
    live = layout.live_under(tmp_path, 1)
    captions = LiveCaptions(live, stand_in)
    begin(captions)
    assert (live / MASTER).is_file()
    end = push_seconds(captions, 0, 3.5)
    wait_for(lambda: len(read_transcript(live.parent)) >= 3)
    captions.close_and_keep(tmp_path)
    cues = read_transcript(live.parent)
    assert [c["text"] for c in cues][:3] == ["second 1", "second 2", "second 3"]
    assert cues[0]["start"] == 0.0 and cues[0]["end"] == 1.0 and cues[0]["speaker"] == "Speaker"
    assert read_transcript(live.parent, "second 2") == [cues[1]]
    assert read_transcript(live.parent, after=2) == cues[2:]
    playlist = parse((live / SUBTITLES).read_text())
    assert playlist.ended
    assert playlist.media_sequence == 3000  # three subtitle segments per audio segment
    total = sum(s.duration for s in playlist.segments)
    assert abs(total - (end / RATE + 1024 / 48_000)) < 0.7
    shown = [c for s in playlist.segments for c in parse_vtt((live / s.uri).read_text())]
    assert {c.text for c in shown} >= {"second 1", "second 2", "second 3"}
    # The live text is kept, on the call's clock, beside the live folder and the recording.
    kept = parse_vtt((tmp_path / LIVE_VTT).read_text())
    assert kept[0].start == 0.0 and kept[0].text == "second 1"
    assert (live.parent / LIVE_VTT).is_file() and (live.parent / TRANSCRIPT).is_file()


def test_cues_carry_the_name_of_who_spoke_as_soon_as_they_are_named(tmp_path: Path) -> None:
    """The bridge names a speaker before the call and a questioner while their line is
    open: each second's cue carries the name of who spoke longest in it, and the
    plain "Speaker" while that talker has no name."""
    live = layout.live_under(tmp_path, 5)
    captions = LiveCaptions(live, stand_in)
    begin(captions)
    captions.name("speaker-1", "Mark Chen")
    end = push_seconds(captions, 0, 2.0, talkers=frozenset({"speaker-1"}))
    # The questioner talks from 2 s (the speaker is held half a second past his last
    # word); the moderator names her at 4 s.
    end = push_seconds(captions, end, 2.0, talkers=frozenset({"caller-7"}))
    captions.name("caller-7", "Jane Smith, Acme Capital")
    end = push_seconds(captions, end, 1.5, talkers=frozenset({"caller-7"}))
    wait_for(lambda: len(read_transcript(live.parent)) >= 5)
    captions.close()
    cues = read_transcript(live.parent)
    assert [(c["text"], c["speaker"]) for c in cues[:5]] == [
        ("second 1", "Mark Chen"),
        ("second 2", "Mark Chen"),
        ("second 3", "Speaker"),  # 0.5 s of Mark, 1 s of a questioner not yet named
        ("second 4", "Speaker"),
        ("second 5", "Jane Smith, Acme Capital"),
    ]
    playlist = parse((live / SUBTITLES).read_text())
    shown = {
        c.text: c.voice for s in playlist.segments for c in parse_vtt((live / s.uri).read_text())
    }
    assert shown["second 1"] == "Mark Chen" and shown["second 5"] == "Jane Smith, Acme Capital"


def test_a_killed_worker_is_started_again_and_captions_resume(tmp_path: Path) -> None:
    live = layout.live_under(tmp_path, 2)
    captions = LiveCaptions(live, stand_in, min_restart_s=0.2)
    begin(captions)
    offset = push_seconds(captions, 0, 1.5)
    wait_for(lambda: read_transcript(live.parent))
    first = captions.process
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    offset = push_seconds(captions, offset, 3.0)
    wait_for(lambda: any(c["start"] >= 2.0 for c in read_transcript(live.parent)))
    captions.close()
    status = json.loads((live.parent / STATUS).read_text())
    assert status["restarts"] >= 1 and status["pid"] != first.pid
    assert captions.stats.restarts >= 1
    # The second worker went on from the first one's segments: one playlist, every file there.
    playlist = parse((live / SUBTITLES).read_text())
    assert playlist.ended and playlist.media_sequence == 3000
    assert all((live / s.uri).is_file() for s in playlist.segments)
    total = sum(s.duration for s in playlist.segments)
    assert abs(total - (offset / RATE + 1024 / 48_000)) < 0.7


@pytest.mark.serial  # times the pushes
def test_push_never_waits_for_a_stalled_worker(tmp_path: Path) -> None:
    live = layout.live_under(tmp_path, 3)
    captions = LiveCaptions(live, lambda: [sys.executable, "-c", STALLED], max_queue_frames=50)
    begin(captions)
    started = time.perf_counter()
    push_seconds(captions, 0, 60.0, pace=False)  # a minute of mix, far more than a pipe holds
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, elapsed
    assert captions.stats.dropped > 0
    process = wait_for(lambda: captions.process)
    started = time.perf_counter()
    captions.close(timeout=2.0)
    assert time.perf_counter() - started < 8.0
    assert process is not None and process.poll() is not None


def test_a_worker_started_again_goes_on_after_the_last_segment(tmp_path: Path) -> None:
    live = layout.live_under(tmp_path, 4)
    live.mkdir(parents=True)
    config = SubtitleConfig(segment_s=0.64)
    first = CaptionFiles(live, config, ORIGIN, 3000, 0.0)
    first.at_edge(4 * RATE)  # four seconds: five segments out (0.8 s wait)
    assert first.track.published == 5
    first.add(LiveCue(0, RATE, "hello", RATE))  # and the sixth with it, to the edge
    # Killed here. The next worker's first chunk is two seconds later.
    second = CaptionFiles(live, config, ORIGIN, 3000, 0.0)
    assert second.track.published == 6
    second.at_edge(6 * RATE)
    second.add(LiveCue(5 * RATE, 6 * RATE, "again", 6 * RATE))
    second.finish()
    playlist = parse((live / SUBTITLES).read_text())
    assert playlist.media_sequence == 3000 and playlist.ended
    assert [s.uri for s in playlist.segments] == [f"sub{3000 + i}.vtt" for i in range(10)]
    assert all((live / s.uri).is_file() for s in playlist.segments)
    assert [c["text"] for c in read_transcript(live.parent)] == ["hello", "again"]
    assert not end_playlist(live)  # ended already


def test_a_playlist_left_open_is_ended(tmp_path: Path) -> None:
    live = layout.live_under(tmp_path, 5)
    live.mkdir(parents=True)
    files = CaptionFiles(live, SubtitleConfig(), ORIGIN, 30, 0.0)
    files.at_edge(3 * RATE)
    assert not parse((live / SUBTITLES).read_text()).ended
    assert end_playlist(live)
    assert parse((live / SUBTITLES).read_text()).ended
    assert not end_playlist(tmp_path)  # no playlist: nothing to end


def test_a_settled_reading_revises_its_cues_in_the_live_transcript(tmp_path: Path) -> None:
    live = layout.live_under(tmp_path, 6)
    live.mkdir(parents=True)
    files = CaptionFiles(live, SubtitleConfig(), ORIGIN, 30, 0.0)
    files.at_edge(2 * RATE)
    files.add(LiveCue(int(0.5 * RATE), int(1.5 * RATE), "Revenue grew to 42.", 2 * RATE, "A", 0))
    files.at_edge(3 * RATE)
    files.add(LiveCue(int(1.6 * RATE), int(2.5 * RATE), "million dollars.", 3 * RATE, "A", 1))
    settled = "Revenue grew to $42 million."
    files.add(LiveCue(int(0.5 * RATE), int(2.5 * RATE), settled, 4 * RATE, "A", 2, (0, 1)))
    # A cue after it, and a second settling of the revision with it (named by its number).
    files.add(LiveCue(int(3 * RATE), int(4 * RATE), "Thank you.", 5 * RATE, "A", 3))
    files.add(
        LiveCue(int(0.5 * RATE), int(4 * RATE), settled + " Thank you!", 6 * RATE, "A", 4, (2, 3))
    )
    files.finish()
    cues = read_transcript(live.parent)
    assert [(c["text"], c["revises"]) for c in cues] == [
        ("Revenue grew to 42.", None),
        ("million dollars.", None),
        (settled, [0, 1]),
        ("Thank you.", None),
        (settled + " Thank you!", [2, 3]),
    ]
    # The first reading's delay is the captions' delay; a revision's is apart.
    assert cues[2]["delay"] is None and cues[0]["delay"] == 0.5
    lines = [json.loads(line) for line in (live.parent / TRANSCRIPT).read_text().splitlines()]
    assert lines[2]["settled_after"] == 1.5 and lines[2]["subtitles"] is False
    # A search finds the settled text only; the live text kept is the settled one.
    assert [c["index"] for c in read_transcript(live.parent, "dollars")] == []
    assert [c["index"] for c in read_transcript(live.parent, "million")] == [4]
    kept = parse_vtt(transcript_vtt(live.parent))
    assert [c.text for c in kept] == [settled + " Thank you!"]
    assert kept[0].start == 0.5


def test_a_worker_started_again_names_lines_after_the_last_ones(tmp_path: Path) -> None:
    live = layout.live_under(tmp_path, 7)
    live.mkdir(parents=True)
    first = CaptionFiles(live, SubtitleConfig(), ORIGIN, 30, 0.0)
    first.add(LiveCue(0, RATE, "hello", RATE, None, 0))
    second = CaptionFiles(live, SubtitleConfig(), ORIGIN, 30, 0.0)
    second.add(LiveCue(2 * RATE, 3 * RATE, "forty", 3 * RATE, None, 0))
    second.add(LiveCue(int(3.2 * RATE), 4 * RATE, "two", 4 * RATE, None, 1))
    second.add(LiveCue(2 * RATE, 4 * RATE, "42", 5 * RATE, None, 2, (0, 1)))
    assert read_transcript(live.parent)[-1]["revises"] == [1, 2]
    # A revision of a cue this worker has no line for (the last one's) is not written.
    second.add(LiveCue(0, 4 * RATE, "hello 42", 6 * RATE, None, 3, (7, 2)))
    assert len(read_transcript(live.parent)) == 4
