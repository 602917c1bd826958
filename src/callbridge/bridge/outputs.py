"""What a call leaves behind: its recording, live webcast and captions, replay and transcript.

``Outputs`` starts each event's recorder and live webcast (with live
captions, if on) when its call starts, and closes them when it ends; then
the recording is assembled, the web replay packaged and the transcript
started, in the background. At start-up it assembles what a crash cut
short and packages replays not yet packaged. It also finds an event's
recording for the callers of replay by phone.

The blocking work (files, fsync, packaging) runs on worker threads; the
event loop only starts and awaits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from callbridge.bridge.control import Role
from callbridge.bridge.controller import Member
from callbridge.children import die_with_parent
from callbridge.media.conference import Conference
from callbridge.media.recording import (
    MARKER,
    CallRecorder,
    ChunkWriterThread,
    RecordingError,
    assemble,
    load_assembled,
    recover_all,
)
from callbridge.replay import library
from callbridge.replay import phone as replay_phone
from callbridge.replay.phone import ReplayAudio, load_replay
from callbridge.store import layout
from callbridge.webcast.blocking import PlaylistWaiter
from callbridge.webcast.captions import CaptionStats, LiveCaptions
from callbridge.webcast.live import LiveConfig, LiveStats, LiveWebcast

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputCounts:
    """Since start: LL-HLS parts and segments made, frames the packager dropped or got late,
    frames the caption workers missed (queue full, worker down), workers restarted."""

    parts: int = 0
    segments: int = 0
    webcast_dropped: int = 0
    webcast_late: int = 0
    caption_dropped: int = 0
    caption_restarts: int = 0

    def plus(self, webcast: LiveStats | None, captions: CaptionStats | None) -> OutputCounts:
        # The packager's thread writes these; an int read is whole (approximate while it runs).
        return OutputCounts(
            self.parts + (webcast.parts if webcast else 0),
            self.segments + (webcast.segments if webcast else 0),
            self.webcast_dropped + (webcast.dropped if webcast else 0),
            self.webcast_late + (webcast.late if webcast else 0),
            self.caption_dropped + (captions.dropped if captions else 0),
            self.caption_restarts + (captions.restarts if captions else 0),
        )


@dataclass(frozen=True)
class OutputsConfig:
    # Where calls are recorded (one folder per call); None records nothing.
    recordings: Path | None = None
    # Where the live webcast of each call is packaged (LL-HLS); None: no webcast.
    webcasts: Path | None = None
    # The child process that transcribes an event's recording; None: no transcripts.
    transcribe_command: Callable[[int], list[str]] | None = None
    # The live caption worker's command for a glossary; None: no live captions.
    caption_command: Callable[[Sequence[str]], list[str]] | None = None


class Outputs:
    """Every event's recorder, webcast and captions, and what is made of them after the call."""

    def __init__(self, config: OutputsConfig, glossary: Callable[[int], list[str]]) -> None:
        """``glossary(event_id)`` reads the event's glossary (blocking; a worker thread calls)."""
        self.config = config
        self.glossary = glossary
        # Told of every live playlist published (event id, text, still live): the
        # control server pushes them to the web processes.
        self.on_playlist: Callable[[int, str | None, bool], None] | None = None
        # A replay packaged: (event id, seconds of the call it holds). A cascade's
        # origin records it, so that the one holding the most serves it.
        self.on_replay: Callable[[int, float], None] | None = None
        self._chunk_writer: ChunkWriterThread | None = None
        self._recorders: dict[int, CallRecorder] = {}
        self._webcasts: dict[int, tuple[LiveWebcast, PlaylistWaiter]] = {}
        self._captions: dict[int, LiveCaptions] = {}
        # Recordings that replay callers are listening to, memory-mapped, by path.
        self._replays: dict[Path, ReplayAudio] = {}
        self._tasks: list[asyncio.Future[object]] = []
        # What the webcasts and caption workers of calls that ended counted
        # (``counts`` adds the running ones' to them), and transcripts running now.
        self._ended = OutputCounts()
        self.transcribing = 0

    async def start(self) -> None:
        """Assemble what a crash cut short, then package the replays not yet packaged."""
        root = self.config.recordings
        if root is None:
            return
        root.mkdir(parents=True, exist_ok=True)
        # A call cut short by a crash is assembled before new calls come in.
        for item in await asyncio.to_thread(recover_all, root):
            log.info(
                "recovered the recording of event %s: %.0f s in %s",
                item.event_id,
                item.duration_s,
                item.wav,
            )
        self._chunk_writer = ChunkWriterThread()
        self._tasks.append(asyncio.ensure_future(self._prepare_pending(root)))

    async def close(self) -> None:
        """Close every webcast, caption worker and recorder (the next start assembles)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for webcast, _ in self._webcasts.values():
            await asyncio.to_thread(webcast.close)
        for captions in self._captions.values():
            await asyncio.to_thread(captions.close)
        for recorder in self._recorders.values():
            # Closed, not assembled: the next start assembles it (recover_all).
            await asyncio.to_thread(recorder.close)
        if self._chunk_writer is not None:
            await asyncio.to_thread(self._chunk_writer.close)

    # -- a call starts and ends -----------------------------------------------------------------

    def start_call(self, conference: Conference, members: list[Member]) -> None:
        """The call started: webcast it and record it (``members``: who is on it).

        The webcast first: the recording names its members, and so tells the
        live captions their names."""
        self._start_webcast(conference)
        self._start_recording(conference, members)

    async def end_call(self, conference: Conference) -> None:
        """The call ended: close its webcast, keep its captions, assemble its recording."""
        event_id = conference.event_id
        conference.recorder = None
        conference.webcast = None
        webcast = self._webcasts.pop(event_id, None)
        if webcast is not None:
            # The last segment and EXT-X-ENDLIST: players stop at the end.
            await asyncio.to_thread(webcast[0].close)
            webcast[1].notify()
            if self.on_playlist is not None:
                final = webcast[0].snapshot()
                self.on_playlist(event_id, final.text if final is not None else None, False)
        captions = self._captions.pop(event_id, None)
        self._ended = self._ended.plus(
            webcast[0].stats if webcast is not None else None,
            captions.stats if captions is not None else None,
        )
        recorder = self._recorders.pop(event_id, None)
        if captions is not None:
            # The live text is kept beside the recording: the offline pass replaces it.
            # The worker may take seconds over its last words: the call ends without it.
            keep = recorder.directory if recorder is not None else None
            closing = asyncio.to_thread(captions.close_and_keep, keep)
            self._tasks.append(asyncio.ensure_future(closing))
        if recorder is not None:
            asyncio.get_running_loop().create_task(self._finish_recording(recorder))

    def annotate(self, member: Member | None) -> None:
        """Tell the recording who a stem is (role, number, name) as they join or are named,
        and the live captions whose name to give their words (a questioner's too)."""
        if member is None:
            return
        captions = self._captions.get(member.event_id)
        if captions is not None:
            captions.name(member.id, member.name)
        recorder = self._recorders.get(member.event_id)
        if recorder is None or member.role is Role.LISTENER:
            return
        recorder.annotate_stem(
            member.id,
            role=member.role.value,
            caller_id=member.caller_id,
            display_name=member.name,
        )

    def _start_recording(self, conference: Conference, members: list[Member]) -> None:
        root = self.config.recordings
        if root is None or conference.event_id in self._recorders:
            return
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        directory = layout.recording_under(root, conference.event_id, stamp)
        try:
            recorder = CallRecorder(directory, conference.event_id, writer=self._chunk_writer)
        except (OSError, RecordingError):
            log.exception("event %d: the call is NOT being recorded", conference.event_id)
            return
        self._recorders[conference.event_id] = recorder
        conference.recorder = recorder
        for member in members:
            self.annotate(member)
        log.info("event %d: recording to %s", conference.event_id, directory)

    def _start_webcast(self, conference: Conference) -> None:
        root = self.config.webcasts
        if root is None or conference.event_id in self._webcasts:
            return
        directory = layout.live_under(root, conference.event_id)
        try:
            # A webcast restarts from segment 0: files of an earlier run would
            # be mistaken for this one's.
            if directory.exists():
                shutil.rmtree(directory)
            captions = self._live_captions(conference.event_id, directory)
            webcast = LiveWebcast(
                directory, LiveConfig(part_units=10, parts_per_segment=9), tap=captions
            )
        except OSError:
            log.exception("event %d: the webcast could not start", conference.event_id)
            return
        waiter = PlaylistWaiter(webcast)
        event_id = conference.event_id
        loop = asyncio.get_running_loop()
        waiter.attach(webcast, loop, then=lambda: self._playlist_published(event_id))
        self._webcasts[event_id] = (webcast, waiter)
        conference.webcast = webcast
        self._playlist_published(event_id)
        log.info("event %d: webcast packaged in %s", conference.event_id, directory)

    def _live_captions(self, event_id: int, directory: Path) -> LiveCaptions | None:
        """The call's caption worker (``webcast.captions``), if live captions are on."""
        command = self.config.caption_command
        if command is None:
            return None

        def worker() -> list[str]:
            # Runs on the captions' feeder thread when a worker starts: the
            # event's glossary as it is then.
            try:
                glossary = self.glossary(event_id)
            except Exception:
                log.warning("event %d: live captions start without the glossary", event_id)
                return command([])
            return command(glossary)

        try:
            captions = LiveCaptions(directory, worker)
        except OSError:
            # The webcast goes on without captions.
            log.exception("event %d: live captions could not start", event_id)
            return None
        self._captions[event_id] = captions
        return captions

    # -- counters, for the metrics -----------------------------------------------------------------

    def counts(self) -> OutputCounts:
        """The webcasts' and caption workers' counters since start (ended calls' included)."""
        total = self._ended
        for webcast, _ in self._webcasts.values():
            total = total.plus(webcast.stats, None)
        for captions in self._captions.values():
            total = total.plus(None, captions.stats)
        return total

    def caption_queues(self) -> dict[int, int]:
        """Frames of the mix waiting for each live call's caption worker (at most 250)."""
        return {event_id: c.queued() for event_id, c in self._captions.items()}

    # -- the live webcast, as the web processes see it ------------------------------------------

    def live_stream(self, event_id: int) -> PlaylistWaiter | None:
        """The blocking-reload waiter of the event's live webcast, if it is running."""
        found = self._webcasts.get(event_id)
        return found[1] if found is not None else None

    def live_playlists(self) -> dict[int, str | None]:
        """The playlist text of every running webcast (None before its first part)."""
        return {
            event_id: snapshot.text if (snapshot := webcast.snapshot()) is not None else None
            for event_id, (webcast, _) in self._webcasts.items()
        }

    def _playlist_published(self, event_id: int) -> None:
        found = self._webcasts.get(event_id)
        if self.on_playlist is None or found is None:
            return
        snapshot = found[0].snapshot()
        self.on_playlist(event_id, snapshot.text if snapshot is not None else None, True)

    # -- after the call --------------------------------------------------------------------------

    async def _finish_recording(self, recorder: CallRecorder) -> None:
        try:
            await asyncio.to_thread(recorder.close)
            assembled = await asyncio.to_thread(assemble, recorder.directory)
        except Exception:
            log.exception(
                "the recording in %s could not be assembled now; the next start will try again",
                recorder.directory,
            )
            return
        log.info(
            "event %s: recording assembled, %.0f s in %s",
            assembled.event_id,
            assembled.duration_s,
            assembled.wav,
        )
        await self._prepare_replay(recorder.directory, assembled.event_id)

    async def _prepare_replay(self, directory: Path, event_id: int | None) -> None:
        """Package the web replay, then start the transcript; both after the call."""
        try:
            packaged = await asyncio.to_thread(library.package, directory)
        except Exception:
            log.exception("the replay in %s could not be packaged", directory)
            return
        if self.on_replay is not None and event_id is not None:
            self.on_replay(event_id, packaged.duration)
        if event_id is not None:
            await self._transcribe(directory, event_id)

    async def _transcribe(self, directory: Path, event_id: int) -> None:
        """Run the transcript of ``event_id`` in a child process at low priority."""
        command = self.config.transcribe_command
        if command is None:
            return
        try:
            # Killed with this process: the next start transcribes it again
            # (_prepare_pending), and an orphan would be a second writer.
            process = await asyncio.create_subprocess_exec(
                *command(event_id),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=die_with_parent,
            )
        except OSError:
            log.exception("event %d: the transcript could not start", event_id)
            return
        self.transcribing += 1
        try:
            _, errors = await process.communicate()
        finally:
            self.transcribing -= 1
        if process.returncode != 0:
            log.error(
                "event %d: the transcript failed (%s): %s",
                event_id,
                process.returncode,
                errors.decode(errors="replace")[-2000:],
            )
        else:
            log.info("event %d: transcript written in %s", event_id, directory)

    async def _prepare_pending(self, recordings: Path) -> None:
        """What the last stop (a crash, a restart) left undone is done now.

        Replays not packaged are packaged (and then transcribed); packaged
        replays whose transcript was cut short are transcribed again.
        """
        for directory in await asyncio.to_thread(library.unpackaged, recordings):
            assembled = load_assembled(directory)
            await self._prepare_replay(directory, assembled.event_id if assembled else None)
        if self.config.transcribe_command is None:
            return  # transcripts off (serve --no-transcripts, an edge): nothing to look for
        for directory in await asyncio.to_thread(library.untranscribed, recordings):
            assembled = load_assembled(directory)
            if assembled is not None and assembled.event_id is not None:
                log.info("event %d: the transcript cut short is started again", assembled.event_id)
                await self._transcribe(directory, assembled.event_id)

    # -- replay by phone ---------------------------------------------------------------------------

    def replay_recording(self, event_id: int) -> tuple[Path, datetime] | None:
        """The newest assembled recording of ``event_id`` and when it was ready (blocking)."""
        root = self.config.recordings
        folder = layout.event_folder(root, event_id) if root is not None else None
        if folder is None or not folder.is_dir():
            return None
        for directory in sorted((d for d in folder.iterdir() if d.is_dir()), reverse=True):
            assembled = load_assembled(directory)
            if assembled is not None and assembled.wav.is_file():
                ready = datetime.fromtimestamp((directory / MARKER).stat().st_mtime, UTC)
                # The whole call when a crash split it into several folders.
                return library.replay_audio(directory), ready
        return None

    async def replay_samples(self, event_id: int) -> ReplayAudio | None:
        """The event's recording for a replay caller, memory-mapped once; None if there is none."""
        found = await asyncio.to_thread(self.replay_recording, event_id)
        if found is None:
            return None
        samples = self._replays.get(found[0])
        if samples is None:
            try:
                samples = await asyncio.to_thread(load_replay, found[0])
            except (OSError, replay_phone.RecordingError):
                log.exception("event %d: the replay recording cannot be read", event_id)
                return None
            self._replays[found[0]] = samples
        return samples
