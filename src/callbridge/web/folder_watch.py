"""Wake the web's streams when a file in a call's folder changes, without polling.

The live transcript (``captions.jsonl``) is appended by the caption worker,
a process of the media plane's, and read by the web app: the console's
live-caption stream waits here for the folder to change (inotify, through
``watchfiles``, which uvicorn's standard extras already bring) instead of
asking for new cues every second. One watch per folder serves every stream
of this process that waits on it; it ends when the last one leaves.

Before a call starts its folder does not exist yet: the watch then waits on
the nearest folder above it that does, and moves down when it appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import watchfiles

log = logging.getLogger(__name__)

# watchfiles groups the changes of this many milliseconds: a cue shows this late at most.
DEBOUNCE_MS = 30
STEP_MS = 10
# Above a folder not made yet, it is looked for this often; on it, the watch is known to
# be on this long after it began (one look at what came in meanwhile), then never again.
LOOK_AGAIN_MS = 1000
SETTLE_MS = 500


class FolderWatch:
    """Counts the changes to one folder's own files (not its subfolders')."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.version = 0
        self.watchers = 0
        self._moved = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch {self.folder}")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen``, or after ``timeout`` seconds."""
        if self.version == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), timeout)
        return self.version

    def _changed(self) -> None:
        self.version += 1
        self._moved.set()
        self._moved = asyncio.Event()

    async def _run(self) -> None:
        while not self._stop.is_set():
            target = self.folder
            while not target.is_dir() and target != target.parent:
                target = target.parent
            arrived = target == self.folder
            if arrived:
                self._changed()  # it may have been written while nobody watched
            # An empty yield comes every ``rust_timeout`` ms without a change: above the
            # folder it is the time to look for it again (what appeared before the watch
            # began is seen no other way); on it, the first one says the watch is on, and
            # what was written since the last look is read once more.
            settled = False
            try:
                async for changes in watchfiles.awatch(
                    target,
                    recursive=False,
                    debounce=DEBOUNCE_MS,
                    step=STEP_MS,
                    stop_event=self._stop,
                    rust_timeout=SETTLE_MS if arrived else LOOK_AGAIN_MS,
                    yield_on_timeout=True,
                    ignore_permission_denied=True,
                ):
                    if not arrived:
                        if changes or self.folder.is_dir():
                            break  # something appeared above it: look again
                    elif changes or not settled:
                        settled = True
                        self._changed()
            except FileNotFoundError:
                pass  # the folder went away: wait above it again
            except Exception:  # the stream still ends its waits by their timeout
                log.exception("watching %s failed; trying again in a second", target)
                await asyncio.sleep(1.0)


class FolderWatches:
    """The process's folder watches, shared by whoever waits on the same folder."""

    def __init__(self) -> None:
        self._watches: dict[Path, FolderWatch] = {}

    @contextlib.asynccontextmanager
    async def watch(self, folder: Path) -> AsyncIterator[FolderWatch]:
        watch = self._watches.get(folder)
        if watch is None:
            watch = self._watches[folder] = FolderWatch(folder)
            watch.start()
        watch.watchers += 1
        try:
            yield watch
        finally:
            watch.watchers -= 1
            if watch.watchers == 0 and self._watches.get(folder) is watch:
                del self._watches[folder]
                await watch.stop()
