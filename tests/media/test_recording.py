from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.media import recording
from callbridge.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from callbridge.media.recording import (
    CallRecorder,
    ChunkError,
    ChunkWriterThread,
    Gap,
    RecordingError,
    assemble,
    chunk_files,
    decode_chunk,
    encode_chunk,
    load_assembled,
    recover_all,
)
from callbridge.store import layout

ROOT = Path(__file__).resolve().parents[2]


def tone(frame: int, freq: float = 440.0, amplitude: int = 8000) -> Pcm:
    """Frame ``frame`` of a continuous tone: phase follows the frame index."""
    n = frame * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)
    return (amplitude * np.sin(2 * np.pi * freq * n / SAMPLE_RATE)).astype(np.int16)


def chunk_tone(frame: int, chunk_frames: int) -> Pcm:
    """A different pitch per chunk window, so a misplaced chunk cannot go unnoticed."""
    return tone(frame, freq=300.0 + 100.0 * (frame // chunk_frames))


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def frames_of(samples: np.ndarray) -> np.ndarray:
    assert len(samples) % FRAME_SAMPLES == 0
    return samples.reshape(-1, FRAME_SAMPLES)


# -- chunks -------------------------------------------------------------------


def test_chunk_round_trip() -> None:
    indices = np.array([5, 6, 9], dtype=np.uint64)
    samples = np.stack([tone(5), tone(6), tone(9)])
    got_indices, got_samples = decode_chunk(encode_chunk(indices, samples))
    assert np.array_equal(got_indices, indices)
    assert np.array_equal(got_samples, samples)


@given(st.binary(max_size=2000))
def test_decode_chunk_rejects_garbage_with_its_own_error(data: bytes) -> None:
    with contextlib.suppress(ChunkError):
        decode_chunk(data)


@settings(max_examples=50)
@given(st.data())
def test_decode_chunk_rejects_every_truncation_and_bit_flip(data: st.DataObject) -> None:
    chunk = encode_chunk(np.arange(3, dtype=np.uint64), np.stack([tone(i) for i in range(3)]))
    cut = data.draw(st.integers(0, len(chunk) - 1))
    with pytest.raises(ChunkError):
        decode_chunk(chunk[:cut])
    position = data.draw(st.integers(0, len(chunk) - 1))
    flipped = bytearray(chunk)
    flipped[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(ChunkError):
        decode_chunk(bytes(flipped))


# -- recorder and assembly ----------------------------------------------------


def test_round_trip_is_sample_exact(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    recorder = CallRecorder(directory, 7, chunk_seconds=0.2)
    chunk = recorder.chunk_frames
    sent = [chunk_tone(n, chunk) for n in range(95)]  # the last chunk is partial
    for n, pcm in enumerate(sent):
        recorder.write_mix(n, pcm)
    recorder.close()

    assert [p.name for p in chunk_files(directory / "mix")][-1] == "000009.chunk"
    result = assemble(directory)
    assert result.event_id == 7
    assert result.complete
    assert result.gaps == []
    assert result.frames == 95
    assert result.duration_s == pytest.approx(1.9)
    assert np.array_equal(read_wav(result.wav), np.concatenate(sent))


def test_recording_may_start_at_any_tick_and_gaps_become_silence(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with CallRecorder(directory, 7, chunk_seconds=0.2) as recorder:
        for n in range(1000, 1100):
            if not 1050 <= n < 1063:  # the clock skipped 13 ticks
                recorder.write_mix(n, tone(n))
    result = assemble(directory)
    assert result.first_frame == 1000
    assert result.gaps == [Gap(50, 13)]
    assert result.gaps[0].start_s == pytest.approx(1.0)
    assert result.gaps[0].duration_s == pytest.approx(0.26)
    mix = frames_of(read_wav(result.wav))
    assert len(mix) == 100
    assert not mix[50:63].any()
    assert np.array_equal(mix[63], tone(1063))


def test_stems_line_up_with_the_mix_by_frame_index(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    host = {n: tone(n, 500) for n in [*range(10, 35), *range(60, 80)]}
    guest = {n: tone(n, 700) for n in range(40, 52)}
    with CallRecorder(directory, 7, chunk_seconds=0.2) as recorder:
        recorder.annotate_stem("p7-1", role="host", caller_id="+15550100", display_name="Ann")
        for n in range(100):
            own = {pid: f[n] for pid, f in (("p7-1", host), ("p7-2", guest)) if n in f}
            mix = sum((f.astype(np.int32) for f in own.values()), np.zeros(FRAME_SAMPLES, np.int32))
            recorder.write_mix(n, mix.astype(np.int16))
            for pid, pcm in own.items():
                recorder.write_stem(pid, n, pcm)
        assert recorder.stem_names() == {"p7-1": "s001", "p7-2": "s002"}

    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["participants"]["p7-1"] == {
        "stem": "s001",
        "role": "host",
        "caller_id": "+15550100",
        "display_name": "Ann",
    }
    assert manifest["participants"]["p7-2"] == {"stem": "s002"}
    assert manifest["event_id"] == 7 and manifest["sample_rate"] == SAMPLE_RATE
    assert manifest["started_at"].endswith("Z") and manifest["ended_at"].endswith("Z")

    result = assemble(directory)
    assert set(result.stems) == {"p7-1", "p7-2"}
    mix = frames_of(read_wav(result.wav))
    for pid, sent in (("p7-1", host), ("p7-2", guest)):
        stem = frames_of(read_wav(result.stems[pid]))
        assert len(stem) == len(mix)
        for n in range(100):
            expected = sent.get(n, np.zeros(FRAME_SAMPLES, np.int16))
            assert np.array_equal(stem[n], expected), (pid, n)
    both = frames_of(read_wav(result.stems["p7-1"])).astype(np.int32) + frames_of(
        read_wav(result.stems["p7-2"])
    )
    assert np.array_equal(both, mix)


def test_a_stem_that_falls_silent_is_written_when_the_mix_moves_on(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    recorder = CallRecorder(directory, 7, chunk_seconds=0.2)
    for n in range(3):
        recorder.write_mix(n, tone(n))
        recorder.write_stem("p7-1", n, tone(n))
    for n in range(3, 12):
        recorder.write_mix(n, tone(n))
    # Window 0 is over: the speaker's three frames are on disk without a further word.
    assert len(chunk_files(directory / "stem" / "s001")) == 1
    recorder.close()


def test_memory_holds_at_most_one_chunk_per_stream(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path / "rec", 7, chunk_seconds=0.1)
    most = 0
    for n in range(60):
        recorder.write_mix(n, tone(n))
        recorder.write_stem("p7-1", n, tone(n))
        # A misbehaving caller repeating one index must not grow the buffer either.
        recorder.write_stem("p7-2", 3, tone(n))
        most = max(most, recorder.buffered_frames)
    assert most == recorder.chunk_frames == 5
    recorder.close()
    assert recorder.buffered_frames == 0


def test_a_directory_is_recorded_once(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    recorder = CallRecorder(directory, 7, chunk_seconds=0.2)
    with pytest.raises(RecordingError, match="being recorded"):
        CallRecorder(directory, 7)
    with pytest.raises(RecordingError, match="being recorded"):
        assemble(directory)
    recorder.write_mix(0, tone(0))
    recorder.close()
    with pytest.raises(RecordingError, match="already holds"):
        CallRecorder(directory, 7)


def test_bad_frames_are_refused(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path / "rec", 7)
    with pytest.raises(ValueError, match="320 samples"):
        recorder.write_mix(0, np.zeros(80, np.int16))
    with pytest.raises(ValueError, match="negative"):
        recorder.write_stem("p7-1", -1, tone(0))
    recorder.close()
    with pytest.raises(RecordingError, match="closed"):
        recorder.write_mix(0, tone(0))


def test_torn_and_damaged_chunks_are_ignored(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with CallRecorder(directory, 7, chunk_seconds=0.2) as recorder:
        for n in range(40):
            recorder.write_mix(n, tone(n))
    mix = directory / "mix"
    whole = (mix / "000001.chunk").read_bytes()
    # What a crash inside write_atomic leaves: a temp file, half written.
    (mix / ".000004.chunk.tmp").write_bytes(whole[: len(whole) // 2])
    # What no crash should leave, but a bad disk might: a final name with bad bytes.
    (mix / "000002.chunk").write_bytes(whole[:-7] + b"garbage")

    result = assemble(directory)
    assert result.damaged == [mix / "000002.chunk"]
    assert result.gaps == [Gap(20, 10)]
    samples = frames_of(read_wav(result.wav))
    assert np.array_equal(samples[:20], np.stack([tone(n) for n in range(20)]))
    assert np.array_equal(samples[30:], np.stack([tone(n) for n in range(30, 40)]))


def test_assembly_is_idempotent_and_redone_after_a_crash_in_it(tmp_path: Path) -> None:
    root = layout.recordings(tmp_path)
    directory = layout.recording_under(root, 7, "call-1")
    with CallRecorder(directory, 7, chunk_seconds=0.2) as recorder:
        for n in range(50):
            recorder.write_mix(n, tone(n))
            recorder.write_stem("p7-1", n, tone(n, 600))
    first = assemble(directory)
    wav_bytes = first.wav.read_bytes()
    stem_bytes = first.stems["p7-1"].read_bytes()
    assert load_assembled(directory) == first
    assert assemble(directory).wav.read_bytes() == wav_bytes

    # A crash half-way through assembly: no marker yet, a torn output and a temp file.
    (directory / "assembled.json").unlink()
    first.wav.write_bytes(wav_bytes[:1000])
    (directory / ".recording.m4a.tmp").write_bytes(b"\0" * 100)
    recovered = recover_all(root)
    assert [r.directory for r in recovered] == [directory]
    assert recovered[0] == first
    assert first.wav.read_bytes() == wav_bytes
    assert first.stems["p7-1"].read_bytes() == stem_bytes
    assert recover_all(root) == []


def test_recover_all_leaves_live_and_empty_recordings_alone(tmp_path: Path) -> None:
    live = CallRecorder(tmp_path / "live", 1, chunk_seconds=0.1)
    for n in range(20):
        live.write_mix(n, tone(n))
    CallRecorder(tmp_path / "empty", 2).close()  # a manifest, never a chunk
    broken = tmp_path / "broken"
    with CallRecorder(broken, 3, chunk_seconds=0.1) as recorder:
        recorder.write_mix(0, tone(0))
    (broken / "mix" / "000000.chunk").write_bytes(b"CBCK")  # nothing valid left

    assert recover_all(tmp_path) == []
    live.close()
    assert [r.event_id for r in recover_all(tmp_path)] == [1]
    assert recover_all(tmp_path / "absent") == []


def test_compressed_copy_decodes_with_the_same_length_and_pitch(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with CallRecorder(directory, 7, chunk_seconds=0.5) as recorder:
        for n in range(150):
            recorder.write_mix(n, tone(n))
    result = assemble(directory)
    assert result.compressed.name == "recording.m4a"
    with av.open(str(result.compressed)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        assert stream.codec_context.profile == "LC"
        assert stream.sample_rate == 16000
        decoded = np.concatenate(
            [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        )
    assert len(decoded) / 16000 == pytest.approx(3.0, abs=0.1)
    assert result.compressed_duration_s == pytest.approx(3.0, abs=0.1)
    middle = decoded[8000:40000]
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.fft.rfftfreq(len(middle), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=2)


# -- background writer ---------------------------------------------------------


def test_writer_thread_gives_the_same_recording(tmp_path: Path) -> None:
    writer = ChunkWriterThread()
    try:
        for name in ("a", "b"):
            with CallRecorder(tmp_path / name, 7, chunk_seconds=0.2, writer=writer) as recorder:
                for n in range(45):
                    recorder.write_mix(n, tone(n))
                    recorder.write_stem("p7-1", n, tone(n, 900))
        assert writer.pending == 0
        assert writer.stats.dropped == writer.stats.errors == 0
    finally:
        writer.close()
    assert writer.exited.is_set()
    a, b = assemble(tmp_path / "a"), assemble(tmp_path / "b")
    assert a.wav.read_bytes() == b.wav.read_bytes()
    assert np.array_equal(read_wav(a.wav), np.concatenate([tone(n) for n in range(45)]))


def test_writer_thread_drops_rather_than_block_when_the_disk_stalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writing = threading.Event()
    stalled = threading.Event()
    real_write = recording.write_atomic

    def slow_write(path: Path, data: bytes) -> None:
        if path.name.endswith(".chunk"):
            writing.set()
            stalled.wait(5)
        real_write(path, data)

    monkeypatch.setattr(recording, "write_atomic", slow_write)
    writer = ChunkWriterThread(max_pending=2)
    recorder = CallRecorder(tmp_path / "rec", 7, chunk_seconds=0.1, writer=writer)
    for n in range(6):
        recorder.write_mix(n, tone(n))
    assert writing.wait(5)
    started = time.perf_counter()
    # Chunk 0 is stuck on disk, chunks 1 and 2 wait in the queue, 3 to 6 are dropped.
    for n in range(6, 40):
        recorder.write_mix(n, tone(n))
    assert time.perf_counter() - started < 0.5
    assert writer.stats.dropped == 4
    stalled.set()
    recorder.close()  # off the tick, the last partial chunk waits for room instead
    writer.close()
    assert writer.stats.dropped == 4
    assert writer.stats.written == 4
    result = assemble(tmp_path / "rec")
    assert sum(gap.frames for gap in result.gaps) == 4 * 5


# -- a real crash ------------------------------------------------------------------

CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from callbridge.media.recording import CallRecorder

def tone(frame):
    n = frame * 320 + np.arange(320)
    return (8000 * np.sin(2 * np.pi * 440.0 * n / 16000)).astype(np.int16)

recorder = CallRecorder(Path(sys.argv[1]), 42, chunk_seconds=1.0)
recorder.annotate_stem("p42-1", role="host")
start = time.monotonic()
print("recording", flush=True)
for frame in range(300):  # six seconds, at real-time pace
    delay = start + frame * 0.02 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    recorder.write_mix(frame, tone(frame))
    recorder.write_stem("p42-1", frame, tone(frame))
recorder.close()
print("finished", flush=True)
"""


def test_sigkill_mid_call_loses_at_most_the_last_chunk(tmp_path: Path) -> None:
    directory = layout.event_folder(tmp_path, 42)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "recording\n"
        started = time.monotonic()
        time.sleep(4.5)
        killed_at = time.monotonic() - started
        child.send_signal(signal.SIGKILL)
        assert child.wait(5) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    [result] = recover_all(tmp_path)
    assert not result.complete  # the recorder never closed
    assert result.event_id == 42
    assert killed_at - 1.0 - 0.5 <= result.duration_s <= killed_at + 0.1
    assert result.gaps == [] and result.damaged == []
    expected = np.concatenate([tone(n) for n in range(result.frames)])
    assert np.array_equal(read_wav(result.wav), expected)
    # The stem's chunk for a window is written just after the mix's: a kill between
    # the two leaves the stem one chunk short, padded with silence to the mix's length.
    stem = read_wav(result.stems["p42-1"])
    assert len(stem) == len(expected)
    whole = (result.frames - 50) * FRAME_SAMPLES
    assert np.array_equal(stem[:whole], expected[:whole])
    assert np.array_equal(stem[whole:], expected[whole:]) or not stem[whole:].any()
    with av.open(str(result.compressed)) as container:
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(result.duration_s, abs=0.1)


def test_a_recording_made_at_8_khz_is_still_assembled_at_8_khz(tmp_path: Path) -> None:
    # Made before the mix was 16 kHz: 160-sample chunks, manifest 8000.
    directory = tmp_path / "old"
    (directory / "mix").mkdir(parents=True)
    narrow = (8000 * np.sin(2 * np.pi * 440 * np.arange(160 * 100) / 8000)).astype(np.int16)
    indices = np.arange(100, dtype=np.uint64)
    (directory / "mix" / "000000.chunk").write_bytes(
        encode_chunk(indices, narrow.reshape(100, 160))
    )
    (directory / "manifest.json").write_text(
        json.dumps({"format": 1, "event_id": 7, "sample_rate": 8000, "frame_samples": 160})
    )
    result = assemble(directory)
    with wave.open(str(result.wav)) as wav:
        assert wav.getframerate() == 8000 and wav.getnframes() == 16_000
    assert result.duration_s == pytest.approx(2.0)
