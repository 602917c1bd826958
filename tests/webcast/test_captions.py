"""The live captions' host: a real worker process on pipes, its restarts, and a clock never held.

The worker here is a small stand-in process that speaks the worker's protocol
(chunks in, JSON lines out) with no engine: a cue for every second of mix it
reads. The real worker is tested in tests/transcript/test_live.py and end to
end in tests/telephony/test_live_captions.py.
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

from callbridge.transcript.vtt import parse_vtt
from callbridge.webcast.captions import LIVE_VTT, STATUS, TRANSCRIPT, LiveCaptions, read_transcript
from callbridge.webcast.playlist import parse
from callbridge.webcast.subtitles import MASTER, SUBTITLES

FRAME = 160
RATE = 8000

# Reads chunks; after each whole second of mix, a cue for it and the horizon.
STAND_IN = r"""
import json, struct, sys
header = struct.Struct("<qI")
next_cue = None
while True:
    raw = sys.stdin.buffer.read(header.size)
    if len(raw) < header.size:
        break
    offset, count = header.unpack(raw)
    sys.stdin.buffer.read(count * 2)
    end = offset + count
    if next_cue is None:
        next_cue = (offset // 8000 + 1) * 8000
    if end >= next_cue:
        cue = {"start": next_cue - 8000, "end": next_cue, "ready": end,
               "text": "second %d" % (next_cue // 8000)}
        print(json.dumps({"cue": cue}))
        next_cue += 8000
    print(json.dumps({"horizon": end}), flush=True)
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


def push_seconds(captions: LiveCaptions, start: int, seconds: float, pace: bool = True) -> int:
    frame = np.full(FRAME, 1000, np.int16)
    offset = start
    for _ in range(int(seconds * RATE / FRAME)):
        captions.push(offset, frame)
        offset += FRAME
        if pace:
            time.sleep(0.002)
    return offset


def begin(captions: LiveCaptions) -> None:
    captions.begin(datetime(2026, 11, 29, 12, tzinfo=UTC), 1000, 1.92, 1024 / 48_000)


def test_cues_become_subtitles_and_the_console_transcript(tmp_path: Path) -> None:
    live = tmp_path / "event-1" / "live"
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


def test_a_killed_worker_is_started_again_and_captions_resume(tmp_path: Path) -> None:
    live = tmp_path / "event-2" / "live"
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


@pytest.mark.serial  # times the pushes
def test_push_never_waits_for_a_stalled_worker(tmp_path: Path) -> None:
    live = tmp_path / "event-3" / "live"
    captions = LiveCaptions(live, lambda: [sys.executable, "-c", STALLED], max_queue_frames=50)
    begin(captions)
    started = time.perf_counter()
    push_seconds(captions, 0, 60.0, pace=False)  # a minute of mix, far more than a pipe holds
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, elapsed
    assert captions.stats.dropped > 0
    # The subtitles still keep up with the audio, empty, while the worker says nothing.
    wait_for(lambda: (live / SUBTITLES).is_file())
    process = captions.process
    captions.close(timeout=2.0)
    assert process is not None and process.poll() is not None
