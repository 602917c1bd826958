"""Recording a conference so that a crash loses only the last few seconds.

Janus-style: raw capture while the call runs, post-processing afterwards.
``CallRecorder`` is fed from the 20 ms media tick and writes the mix (and
each speaker's own audio, a *stem*) as small chunk files, each one complete
the moment it has its final name. ``assemble`` turns a directory of chunks
into one WAV, a browser-playable AAC copy and one WAV per stem, when the
call ends or, after a crash, when the server next starts (``recover_all``).

One recording directory::

    manifest.json            event id, sample rate, started_at/ended_at (UTC),
                             participants → stem names, role, caller id, name
    mix/000000.chunk         the conference mix, in chunk files numbered 0, 1, 2…
    stem/s001/000000.chunk   one speaker's audio: only the frames they sent
    .lock                    flock'ed while a CallRecorder writes here
    recording.wav            after assembly: 16-bit PCM, 16 kHz (the mix's rate), mono
    recording.m4a            AAC-LC, 16 kHz mono, moov atom first (plays while loading)
    stems/s001.wav           same timeline and length as recording.wav
    assembled.json           written last: its presence means assembly finished

A chunk file, little-endian::

    magic b"CBCK" | version u16 = 1 | frame_samples u16 = 320 | sample_rate u32 = 16000
    | frame count n u32 | CRC-32 of the body u32            (20-byte header)
    body: n × u64 frame index, then n × 320 × int16 samples

Recordings are made at the mix's 16 kHz. Those made before the mix was
wideband are 160 samples at 8000 Hz, and are still read and assembled at
their own rate (the manifest's ``sample_rate``); a chunk at another rate
than its recording's is damaged.

Each frame carries its own index, so a chunk describes itself: gaps (ticks
the clock skipped, a speaker who stopped talking) need no special record and
become silence on assembly, and stems line up with the mix by index. Every
file is written by ``store.files.write_atomic`` (a temporary ``.NAME.tmp``,
fsync'ed, renamed over its final name, the folder fsync'ed), so a crash
leaves complete chunks and perhaps one temp file, never a torn chunk. Raw
chunks are never deleted here: retention is a policy elsewhere.
Every folder is created ``0700`` and every file ``0600`` (``store.files``):
a recording is nobody else's business on this machine.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from callbridge.media import priority
from callbridge.media.mixer import FRAME_MS, FRAME_SAMPLES, PHONE_RATE, SAMPLE_RATE, Pcm
from callbridge.store.files import durable_dir, fsync_dir, open_private, replacing, write_atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHUNK_MAGIC = b"CBCK"
_HEADER = struct.Struct("<4sHHIII")
# sample rate → samples in a 20 ms frame: what a chunk may hold (8 kHz: made before 16 kHz).
CHUNK_RATES = {rate: rate * FRAME_MS // 1000 for rate in (SAMPLE_RATE, PHONE_RATE)}
_CHUNK_NAME = re.compile(r"^(\d+)\.chunk$")
_WAV_HEADER_BYTES = 44

MANIFEST = "manifest.json"
MARKER = "assembled.json"
LOCK = ".lock"
MIX_DIR = "mix"
STEM_DIR = "stem"

DEFAULT_MAX_STEMS = 64
DEFAULT_MAX_PENDING = 64
COMPRESSED_RATE = 16_000
COMPRESSED_BIT_RATE = 32_000


class RecordingError(Exception):
    """A recording that cannot be started, written or assembled."""


class ChunkError(RecordingError):
    """A chunk file that is not a complete, valid chunk."""


# -- files ------------------------------------------------------------------


def encode_chunk(indices: npt.NDArray[np.uint64], samples: Pcm) -> bytes:
    """Serialise frames (``indices[i]`` is the frame index of ``samples[i]``) as one chunk.

    The frames' length says their rate: 320 samples are 16 kHz, 160 are 8 kHz.
    """
    size = samples.shape[1] if samples.ndim == 2 else -1
    rate = next((r for r, n in CHUNK_RATES.items() if n == size), None)
    if rate is None or samples.shape[0] != len(indices):
        raise ValueError(f"expected {len(indices)} frames of {FRAME_SAMPLES} samples")
    body = indices.astype("<u8").tobytes() + samples.astype("<i2").tobytes()
    header = _HEADER.pack(CHUNK_MAGIC, FORMAT_VERSION, size, rate, len(indices), zlib.crc32(body))
    return header + body


def decode_chunk(data: bytes) -> tuple[npt.NDArray[np.uint64], Pcm]:
    """Parse a chunk file's bytes into (frame indices, samples); raises ``ChunkError``."""
    if len(data) < _HEADER.size:
        raise ChunkError(f"chunk of {len(data)} bytes is shorter than its header")
    magic, version, frame_samples, rate, count, crc = _HEADER.unpack_from(data)
    if magic != CHUNK_MAGIC:
        raise ChunkError(f"bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise ChunkError(f"unknown chunk version {version}")
    if CHUNK_RATES.get(rate) != frame_samples:
        raise ChunkError(f"chunk is {frame_samples} samples at {rate} Hz")
    expected = _HEADER.size + count * (8 + frame_samples * 2)
    if len(data) != expected:
        raise ChunkError(f"chunk of {count} frames should be {expected} bytes, is {len(data)}")
    body = memoryview(data)[_HEADER.size :]
    if zlib.crc32(body) != crc:
        raise ChunkError("chunk CRC mismatch")
    indices = np.frombuffer(body, dtype="<u8", count=count).astype(np.uint64)
    samples = (
        np.frombuffer(body, dtype="<i2", offset=count * 8)
        .astype(np.int16)
        .reshape(count, frame_samples)
    )
    return indices, samples


def chunk_files(directory: Path) -> list[Path]:
    """The complete chunk files of one stream, in the order they were written.

    Temp files left by a crash (``.000007.chunk.tmp``) do not match and are ignored.
    """
    if not directory.is_dir():
        return []
    numbered: list[tuple[int, Path]] = []
    for entry in directory.iterdir():
        match = _CHUNK_NAME.match(entry.name)
        if match is not None and entry.is_file():
            numbered.append((int(match.group(1)), entry))
    return [path for _, path in sorted(numbered)]


# -- writers ----------------------------------------------------------------


class ChunkSink(Protocol):
    """Where a recorder's finished files go."""

    def write(self, path: Path, data: bytes, *, wait: bool = False) -> None:
        """Store ``data`` at ``path`` atomically, now or soon; never raises.

        ``wait=True`` (off the tick: ``close``) may block rather than drop.
        """

    def drain(self) -> None:
        """Return once everything handed to ``write`` so far is on disk (or has failed)."""


@dataclass
class WriterStats:
    written: int = 0
    bytes: int = 0
    errors: int = 0
    dropped: int = 0


class SyncChunkWriter:
    """Writes each file before ``write`` returns: deterministic, for tests and tools.

    On the media tick a flush costs one fsync per stream (about 1 ms, several
    ms at the tail, on this kind of machine); ``ChunkWriterThread`` moves it off.
    """

    def __init__(self) -> None:
        self.stats = WriterStats()

    def write(self, path: Path, data: bytes, *, wait: bool = False) -> None:
        try:
            write_atomic(path, data)
        except OSError:
            # A full or failing disk loses recording, never the call.
            self.stats.errors += 1
            log.exception("recording: cannot write %s", path)
            return
        self.stats.written += 1
        self.stats.bytes += len(data)

    def drain(self) -> None:
        return


class ChunkWriterThread:
    """Writes files on a background thread, behind a bounded queue.

    ``write`` only appends to the queue (a few µs). When ``max_pending`` files
    are already waiting, the disk is not keeping up with 16 KB/s per stream:
    the file is dropped and counted rather than stalling the tick that every
    listener's audio depends on; assembly then reports the hole as a gap.
    One thread may serve several recorders. Call ``close`` to stop it.
    """

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self.stats = WriterStats()
        self.exited = threading.Event()
        self._pending: deque[tuple[Path, bytes]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="chunk-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._busy

    def write(self, path: Path, data: bytes, *, wait: bool = False) -> None:
        with self._cond:
            while wait and len(self._pending) >= self.max_pending and not self.exited.is_set():
                self._cond.wait(0.5)
            if self._closing or self.exited.is_set() or len(self._pending) >= self.max_pending:
                self.stats.dropped += 1
                dropped = True
            else:
                self._pending.append((path, data))
                self._cond.notify()
                dropped = False
        # Powers of two only: a stalled disk must not also flood the log.
        if dropped and self.stats.dropped & (self.stats.dropped - 1) == 0:
            log.error(
                "recording: writer queue full or closed, dropped %s (%d dropped so far)",
                path,
                self.stats.dropped,
            )

    def drain(self) -> None:
        with self._cond:
            while (self._pending or self._busy) and not self.exited.is_set():
                self._cond.wait(0.5)

    def close(self) -> None:
        """Write what is queued, then stop the thread. Safe to call twice."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        priority.as_media_worker()
        try:
            while True:
                with self._cond:
                    while not self._pending and not self._closing:
                        self._cond.wait()
                    if not self._pending:
                        return
                    path, data = self._pending.popleft()
                    self._busy = True
                try:
                    write_atomic(path, data)
                except OSError:
                    self.stats.errors += 1
                    log.exception("recording: cannot write %s", path)
                else:
                    self.stats.written += 1
                    self.stats.bytes += len(data)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        finally:
            self.exited.set()
            with self._cond:
                self._cond.notify_all()


class _DirectoryLock:
    """The recorder's flock, taken without waiting: busy means someone writes here."""

    def __init__(self, directory: Path) -> None:
        self.fd = open_private(directory / LOCK, os.O_RDWR)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            raise RecordingError(f"{directory} is being recorded or assembled now") from exc

    def release(self) -> None:
        os.close(self.fd)


# -- recorder ---------------------------------------------------------------


class _Stream:
    """One stream's frames of the current chunk window, in preallocated arrays."""

    __slots__ = ("count", "directory", "indices", "samples", "seq", "window")

    def __init__(self, directory: Path, capacity: int) -> None:
        self.directory = directory
        self.indices = np.zeros(capacity, dtype=np.uint64)
        self.samples = np.zeros((capacity, FRAME_SAMPLES), dtype=np.int16)
        self.count = 0
        self.window = -1
        self.seq = 0


@dataclass
class RecorderStats:
    mix_frames: int = 0
    stem_frames: int = 0
    chunks: int = 0
    dropped_stem_frames: int = 0


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class CallRecorder:
    """Writes one call's mix and speaker stems as crash-safe chunks.

    Create it when the conference goes live, call ``write_mix`` from every
    media tick and ``write_stem`` for each speaker who sent audio that tick,
    with the tick number as ``frame_index``; call ``close`` when the call
    ends, then ``assemble``. No asyncio and no clock inside: ``started_at``
    defaults to now, for the manifest only.

    Chunks cover aligned windows of ``chunk_seconds`` of frame indices. When
    the mix enters a new window, every stream's earlier window is written, so
    a crash loses at most the current window (plus, with ``ChunkWriterThread``,
    what is still queued). A stream never holds more than one chunk in memory.
    ``directory`` must hold no chunks yet: a recording is written once. Not
    thread-safe: call everything but ``close`` from the tick's thread.
    Raises ``RecordingError`` if the directory is in use or already recorded.
    """

    def __init__(
        self,
        directory: Path,
        event_id: int,
        chunk_seconds: float = 2.0,
        *,
        writer: ChunkSink | None = None,
        started_at: datetime | None = None,
        max_stems: int = DEFAULT_MAX_STEMS,
    ) -> None:
        chunk_frames = round(chunk_seconds * 1000 / FRAME_MS)
        if chunk_frames < 1:
            raise ValueError(f"chunk_seconds must be at least {FRAME_MS / 1000}")
        self.directory = Path(directory)
        self.event_id = event_id
        self.chunk_frames = chunk_frames
        self.max_stems = max_stems
        self.stats = RecorderStats()
        self.writer: ChunkSink = writer if writer is not None else SyncChunkWriter()
        self._owns_writer = writer is None
        self.closed = False
        durable_dir(self.directory)
        self._lock: _DirectoryLock | None = _DirectoryLock(self.directory)
        if chunk_files(self.directory / MIX_DIR) or any(
            chunk_files(d) for d in _stem_dirs(self.directory)
        ):
            self._release_lock()
            raise RecordingError(f"{self.directory} already holds a recording")
        self._mix = _Stream(self.directory / MIX_DIR, chunk_frames)
        self._stems: dict[str, _Stream] = {}
        self._manifest: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "event_id": event_id,
            "sample_rate": SAMPLE_RATE,
            "frame_samples": FRAME_SAMPLES,
            "chunk_frames": chunk_frames,
            "started_at": _utc_iso(started_at or datetime.now(UTC)),
            "ended_at": None,
            "participants": {},
        }
        self._unstemmed: set[str] = set()
        try:
            # Written synchronously: it must exist before the first chunk does.
            write_atomic(self.directory / MANIFEST, self._manifest_bytes())
        except OSError:
            self._release_lock()
            raise

    # -- the tick ---------------------------------------------------------

    def write_mix(self, frame_index: int, pcm: Pcm) -> None:
        """Record one frame of the full mix; call once per media tick."""
        self._check(frame_index, pcm)
        window = frame_index // self.chunk_frames
        if window != self._mix.window:
            self._flush(self._mix)
            self._mix.window = window
            for stem in self._stems.values():
                if stem.count and stem.window != window:
                    self._flush(stem)
        self._append(self._mix, frame_index, window, pcm)
        self.stats.mix_frames += 1

    def write_stem(self, participant_id: str, frame_index: int, pcm: Pcm) -> None:
        """Record one frame a speaker sent; call only for frames they actually sent."""
        self._check(frame_index, pcm)
        stream = self._stems.get(participant_id)
        if stream is None:
            stream = self._new_stem(participant_id)
        if stream is None:
            self.stats.dropped_stem_frames += 1
            return
        self._append(stream, frame_index, frame_index // self.chunk_frames, pcm)
        self.stats.stem_frames += 1

    def annotate_stem(self, participant_id: str, **info: str | int | None) -> None:
        """Attach what is known of a speaker (role, caller_id, display_name…) to the manifest.

        Call it when the speaker joins or is renamed; it registers the stem if new.
        """
        if self.closed:
            raise RecordingError("the recorder is closed")
        if participant_id not in self._stems and self._new_stem(participant_id) is None:
            return
        entry = self._manifest["participants"][participant_id]
        entry.update({key: value for key, value in info.items() if key != "stem"})
        self._write_manifest()

    # -- state ------------------------------------------------------------

    @property
    def buffered_frames(self) -> int:
        """The most frames any one stream holds in memory now (never above ``chunk_frames``)."""
        return max([self._mix.count, *(s.count for s in self._stems.values())])

    def stem_names(self) -> dict[str, str]:
        """Participant id → stem name (the directory under ``stem/``)."""
        return {pid: str(e["stem"]) for pid, e in self._manifest["participants"].items()}

    def close(self, ended_at: datetime | None = None) -> None:
        """Write the partial chunks and the final manifest, wait for the writer, unlock.

        Blocks on disk I/O: from asyncio, run it in a thread. Safe to call twice.
        """
        if self.closed:
            return
        self.closed = True
        try:
            self._flush(self._mix, wait=True)
            for stream in self._stems.values():
                self._flush(stream, wait=True)
            self._manifest["ended_at"] = _utc_iso(ended_at or datetime.now(UTC))
            self.writer.drain()
            write_atomic(self.directory / MANIFEST, self._manifest_bytes())
        finally:
            if self._owns_writer and isinstance(self.writer, ChunkWriterThread):
                self.writer.close()
            self._release_lock()

    def __enter__(self) -> CallRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- inside -----------------------------------------------------------

    def _check(self, frame_index: int, pcm: Pcm) -> None:
        if self.closed:
            raise RecordingError("the recorder is closed")
        if frame_index < 0:
            raise ValueError(f"negative frame index {frame_index}")
        if pcm.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a frame is {FRAME_SAMPLES} samples, got shape {pcm.shape}")

    def _append(self, stream: _Stream, frame_index: int, window: int, pcm: Pcm) -> None:
        # A repeated index or a step back inside one window could overfill the
        # buffer: flushing first keeps the bound.
        if stream.count and (window != stream.window or stream.count == self.chunk_frames):
            self._flush(stream)
        stream.window = window
        stream.indices[stream.count] = frame_index
        stream.samples[stream.count] = pcm
        stream.count += 1

    def _flush(self, stream: _Stream, *, wait: bool = False) -> None:
        if not stream.count:
            return
        data = encode_chunk(stream.indices[: stream.count], stream.samples[: stream.count])
        path = stream.directory / f"{stream.seq:06d}.chunk"
        stream.seq += 1
        stream.count = 0
        self.stats.chunks += 1
        self.writer.write(path, data, wait=wait)

    def _new_stem(self, participant_id: str) -> _Stream | None:
        if len(self._stems) >= self.max_stems:
            if participant_id not in self._unstemmed:
                self._unstemmed.add(participant_id)
                log.warning(
                    "recording: more than %d stems, %s not kept", self.max_stems, participant_id
                )
            return None
        # Stem names are ours, not the participant's id, so any id is a safe path.
        name = f"s{len(self._stems) + 1:03d}"
        stream = _Stream(self.directory / STEM_DIR / name, self.chunk_frames)
        self._stems[participant_id] = stream
        self._manifest["participants"][participant_id] = {"stem": name}
        self._write_manifest()
        return stream

    def _write_manifest(self) -> None:
        # Through the writer, so it lands before this stem's first chunk.
        self.writer.write(self.directory / MANIFEST, self._manifest_bytes())

    def _manifest_bytes(self) -> bytes:
        return json.dumps(self._manifest, indent=2, sort_keys=True).encode() + b"\n"

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _stem_dirs(directory: Path) -> list[Path]:
    root = directory / STEM_DIR
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


# -- assembly ---------------------------------------------------------------

# Longer than any call: a frame index beyond it is a bug, not a 10-year sparse WAV.
MAX_RECORDING_FRAMES = 24 * 3600 * 1000 // FRAME_MS


@dataclass(frozen=True)
class Gap:
    """A stretch of the mix with no recorded frame, filled with silence."""

    start_frame: int  # counted from the first sample of recording.wav
    frames: int

    @property
    def start_s(self) -> float:
        return self.start_frame * FRAME_MS / 1000

    @property
    def duration_s(self) -> float:
        return self.frames * FRAME_MS / 1000


@dataclass(frozen=True)
class Assembled:
    """What ``assemble`` made of one recording directory."""

    directory: Path
    event_id: int | None
    wav: Path
    compressed: Path
    stems: dict[str, Path]  # participant id (stem name if the manifest lost it) → WAV
    first_frame: int  # the frame index at the first sample of every output file
    frames: int
    duration_s: float
    compressed_duration_s: float
    gaps: list[Gap] = field(default_factory=list)
    damaged: list[Path] = field(default_factory=list)
    complete: bool = False  # False when the recorder never closed (a crash)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "event_id": self.event_id,
            "wav": self.wav.name,
            "compressed": self.compressed.name,
            "stems": {
                key: str(path.relative_to(self.directory)) for key, path in self.stems.items()
            },
            "first_frame": self.first_frame,
            "frames": self.frames,
            "duration_s": self.duration_s,
            "compressed_duration_s": self.compressed_duration_s,
            "gaps": [[gap.start_frame, gap.frames] for gap in self.gaps],
            "damaged": [str(path.relative_to(self.directory)) for path in self.damaged],
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, directory: Path, data: dict[str, Any]) -> Assembled:
        return cls(
            directory=directory,
            event_id=data["event_id"],
            wav=directory / data["wav"],
            compressed=directory / data["compressed"],
            stems={key: directory / value for key, value in data["stems"].items()},
            first_frame=int(data["first_frame"]),
            frames=int(data["frames"]),
            duration_s=float(data["duration_s"]),
            compressed_duration_s=float(data["compressed_duration_s"]),
            gaps=[Gap(int(start), int(length)) for start, length in data["gaps"]],
            damaged=[directory / path for path in data["damaged"]],
            complete=bool(data["complete"]),
        )


def load_assembled(directory: Path) -> Assembled | None:
    """The result of a finished assembly of ``directory``, or None if there is none yet."""
    try:
        data = json.loads((directory / MARKER).read_text())
        return Assembled.from_json(directory, data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_manifest(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        log.warning("recording: %s has no readable manifest", directory)
        return {}
    return data if isinstance(data, dict) else {}


def _runs(mask: npt.NDArray[np.bool_]) -> Iterator[tuple[int, int]]:
    """(start, length) of each run of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    for start, end in zip(starts, ends, strict=True):
        yield int(start), int(end - start)


def _wav_header(samples: int, rate: int) -> bytes:
    data_bytes = samples * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def _write_wav(out: Path, chunks: Iterable[Path], base: int, frames: int, rate: int) -> None:
    """Place each chunk's frames at their index; what no chunk covers stays zero (silence)."""
    frame_bytes = CHUNK_RATES[rate] * 2
    with replacing(out) as tmp, os.fdopen(open_private(tmp, os.O_RDWR | os.O_TRUNC), "w+b") as f:
        f.write(_wav_header(frames * CHUNK_RATES[rate], rate))
        f.truncate(_WAV_HEADER_BYTES + frames * frame_bytes)
        for path in chunks:
            indices, samples = decode_chunk(path.read_bytes())
            offsets = indices.astype(np.int64) - base
            # One write per contiguous run: a whole chunk, in the usual case.
            breaks = np.flatnonzero(np.diff(offsets) != 1) + 1
            for start, stop in zip(
                [0, *breaks.tolist()], [*breaks.tolist(), len(offsets)], strict=True
            ):
                f.seek(_WAV_HEADER_BYTES + int(offsets[start]) * frame_bytes)
                f.write(samples[start:stop].astype("<i2").tobytes())


def encode_aac(wav: Path, out: Path) -> float:
    """Encode a WAV this module wrote (44-byte header, 16 or 8 kHz mono) as ``out``, an M4A.

    Blocking; returns the M4A's duration in seconds. ``replay.library`` uses
    it for a replay stitched from several recordings.
    """
    return _encode_aac(wav, out)


def _encode_aac(wav: Path, out: Path) -> float:
    """AAC-LC at 16 kHz in MP4 with the index first; returns the container's duration."""
    import av  # FFmpeg: loaded by the processes that encode, not by every reader of recordings

    with open(wav, "rb") as header:
        rate = struct.unpack("<I", header.read(28)[24:28])[0]
    block = rate  # one second at a time keeps memory flat for long calls
    with replacing(out) as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("aac", rate=COMPRESSED_RATE, layout="mono")
            stream.bit_rate = COMPRESSED_BIT_RATE
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=COMPRESSED_RATE)
            with open(wav, "rb") as source:
                source.seek(_WAV_HEADER_BYTES)
                pts = 0
                while data := source.read(block * 2):
                    pcm = np.frombuffer(data, dtype="<i2").astype(np.int16).reshape(1, -1)
                    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
                    frame.sample_rate = rate
                    frame.pts = pts
                    pts += pcm.shape[1]
                    for resampled in resampler.resample(frame):
                        container.mux(stream.encode(resampled))
            for resampled in resampler.resample(None):
                container.mux(stream.encode(resampled))
            container.mux(stream.encode(None))
        with av.open(str(tmp)) as probe:
            duration = (probe.duration or 0) / av.time_base
    return duration


def assemble(directory: Path) -> Assembled:
    """Turn a recording directory's chunks into ``recording.wav``, ``.m4a`` and stem WAVs.

    Call it after ``CallRecorder.close`` (off the event loop: it encodes), or
    let ``recover_all`` call it after a crash. Idempotent: it rebuilds every
    output from the raw chunks and writes ``assembled.json`` last, so an
    assembly cut short is simply redone. Chunks that fail their checks are
    skipped and listed in ``damaged``; holes in the mix are listed in ``gaps``.
    Raises ``RecordingError`` when the directory is locked or has no chunk.
    """
    directory = Path(directory)
    lock = _DirectoryLock(directory)
    try:
        return _assemble_locked(directory)
    finally:
        lock.release()


def _assemble_locked(directory: Path) -> Assembled:
    manifest = _read_manifest(directory)
    # Recordings from before the mix was 16 kHz say 8000 (and older ones nothing).
    rate = manifest.get("sample_rate", PHONE_RATE)
    if rate not in CHUNK_RATES:
        raise RecordingError(f"{directory}: a recording at {rate!r} Hz")
    stem_keys = {
        str(entry["stem"]): str(pid)
        for pid, entry in manifest.get("participants", {}).items()
        if isinstance(entry, dict) and "stem" in entry
    }
    streams: dict[str, list[Path]] = {MIX_DIR: chunk_files(directory / MIX_DIR)}
    for stem_dir in _stem_dirs(directory):
        streams[f"{STEM_DIR}/{stem_dir.name}"] = chunk_files(stem_dir)

    damaged: list[Path] = []
    valid: dict[str, list[Path]] = {key: [] for key in streams}
    mix_indices: list[npt.NDArray[np.uint64]] = []
    low: int | None = None
    high = 0
    for key, paths in streams.items():
        for path in paths:
            try:
                indices, samples = decode_chunk(path.read_bytes())
                if samples.shape[1] != CHUNK_RATES[rate]:
                    raise ChunkError(f"a chunk at another rate than the recording's {rate} Hz")
            except ChunkError as exc:
                log.warning("recording: skipping %s: %s", path, exc)
                damaged.append(path)
                continue
            if not len(indices):
                continue
            valid[key].append(path)
            first, last = int(indices.min()), int(indices.max())
            low = first if low is None else min(low, first)
            high = max(high, last)
            if key == MIX_DIR:
                mix_indices.append(indices)
    if low is None:
        raise RecordingError(f"{directory} has no complete chunk to assemble")
    frames = high - low + 1
    if frames > MAX_RECORDING_FRAMES:
        raise RecordingError(f"{directory} spans {frames} frames, more than any call")

    present = np.zeros(frames, dtype=np.bool_)
    for indices in mix_indices:
        present[indices.astype(np.int64) - low] = True
    gaps = [Gap(start, length) for start, length in _runs(~present)]

    wav = directory / "recording.wav"
    _write_wav(wav, valid[MIX_DIR], low, frames, rate)
    stems: dict[str, Path] = {}
    stems_dir = directory / "stems"
    for key, paths in valid.items():
        if key == MIX_DIR:
            continue
        name = key.removeprefix(f"{STEM_DIR}/")
        durable_dir(stems_dir)
        out = stems_dir / f"{name}.wav"
        _write_wav(out, paths, low, frames, rate)
        stems[stem_keys.get(name, name)] = out
    compressed = directory / "recording.m4a"
    compressed_duration = _encode_aac(wav, compressed)
    fsync_dir(directory)
    if stems:
        fsync_dir(stems_dir)

    event_id = manifest.get("event_id")
    result = Assembled(
        directory=directory,
        event_id=event_id if isinstance(event_id, int) else None,
        wav=wav,
        compressed=compressed,
        stems=stems,
        first_frame=low,
        frames=frames,
        duration_s=frames * FRAME_MS / 1000,
        compressed_duration_s=compressed_duration,
        gaps=gaps,
        damaged=damaged,
        complete=manifest.get("ended_at") is not None,
    )
    write_atomic(directory / MARKER, json.dumps(result.to_json(), indent=2).encode() + b"\n")
    return result


def _recording_dirs(root: Path) -> Iterator[Path]:
    for current, subdirs, files in os.walk(root):
        if MANIFEST in files or MIX_DIR in subdirs:
            subdirs.clear()  # chunks and stems live below; no recording nests in another
            yield Path(current)


def recover_all(root: Path) -> list[Assembled]:
    """Assemble every recording under ``root`` that has chunks but no ``assembled.json``.

    Call it once when the server starts, before calls are taken (it blocks:
    run it in a thread). Recordings that are locked (still being written by a
    live recorder) are left alone; one that fails is logged and skipped so the
    others are still recovered. Returns what was assembled.
    """
    import av

    done: list[Assembled] = []
    if not root.is_dir():
        return done
    for directory in _recording_dirs(root):
        if load_assembled(directory) is not None:
            continue
        if not chunk_files(directory / MIX_DIR) and not any(
            chunk_files(d) for d in _stem_dirs(directory)
        ):
            continue
        try:
            done.append(assemble(directory))
        except (RecordingError, OSError, ValueError, av.FFmpegError):
            log.exception("recording: cannot recover %s", directory)
        else:
            log.info("recording: recovered %s", directory)
    return done
