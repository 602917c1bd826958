"""Files and folders readable by their owner only.

The database (it holds passcodes and password hashes), the recordings, the
webcast's files and the transcripts are the call's private matter until the
replay is published, and then only through the web app. Everything callbridge
writes is therefore created ``0600`` (files) or ``0700`` (folders): the
server's own user reads them, nobody else on the machine does. The web app
serves the webcast from these folders itself; in the cached set-up nginx
fetches them through the origin (HTTP), never from the disk, so 0700 costs it
nothing.

Use these helpers instead of ``mkdir``/``open`` with the default modes, and
call ``restrict_umask`` once when a process starts, so that files written by
libraries (SQLite's ``-wal``/``-shm``, PyAV's temporary MP4) are private too.

Every file callbridge writes for someone else to read (a recording's chunk, a
webcast part or playlist, a transcript, a progress note, a deck) is written
the one way ``write_atomic`` and ``replacing`` write it: a temporary file in
the same folder, fsync'ed, renamed over the final name, then the folder
fsync'ed. A reader sees the old file or the new one whole, and after a power
cut the new one is either there whole or not there at all: the rename alone
would make it visible before its bytes were on disk, and without the folder's
fsync the rename itself can be lost. Folders the writer creates are fsync'ed
into their parents for the same reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# Group and others get nothing, whatever a call to open() or mkdir() asks for.
PRIVATE_UMASK = 0o077


def restrict_umask() -> int:
    """Make every file this process creates from now on owner-only; returns the old umask.

    Call it once at start-up (``callbridge`` does, for every subcommand).
    """
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """Create ``path`` and any missing parents as ``0700`` folders; returns ``path``.

    With ``tighten`` an existing ``path`` (not its parents) is set to ``0700``
    as well: right for folders callbridge names and owns (``recordings``,
    ``webcast/event-7``); pass ``tighten=False`` for a folder the operator
    chose and may share (the one that holds the SQLite file).
    """
    path = Path(path)
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        # mkdir's mode passes through the umask; chmod states it exactly.
        folder.chmod(PRIVATE_DIR)
    if tighten and not missing:
        path.chmod(PRIVATE_DIR)
    return path


def create_private_file(path: Path) -> Path:
    """Make sure ``path`` exists and is ``0600`` (creating it empty if need be); returns it.

    For files a library opens itself by name, such as the SQLite database:
    created here first, the library finds it and keeps its mode.
    """
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` with ``O_CREAT`` at mode ``0600``; returns the descriptor (close it)."""
    return os.open(path, flags | os.O_CREAT, PRIVATE_FILE)


# -- the one atomic, durable writer -----------------------------------------------------------


def fsync_dir(directory: Path) -> None:
    """Make the folder's entries (a rename into it, a new file) survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Put a file written by other means (a library, a child process) on disk, as ``0600``.

    For files about to be renamed into place, alone (``replacing``) or with
    their folder (a deck's pages, rendered into a folder that then replaces
    the old one).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # a library may have created it with the default mode
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_dir(directory: Path) -> Path:
    """Create ``directory`` and missing parents as ``0700``, each fsync'ed into its parent.

    A file renamed into a folder whose own entry was never synced can vanish
    with it after a power cut. Existing folders are left as they are.
    """
    if directory.is_dir():
        return directory
    durable_dir(directory.parent)
    directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    directory.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask
    fsync_dir(directory.parent)
    return directory


def temporary_name(path: Path) -> Path:
    """Where ``path``'s next content is written before it replaces it (hidden, same folder)."""
    return path.with_name(f".{path.name}.tmp")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yields a temporary path to write ``path``'s new content to, by any means.

    For content written as a stream or by a library that wants a file name
    (a WAV, an MP4 through FFmpeg). On a clean exit the temporary file is
    fsync'ed, set to ``0600``, renamed over ``path`` and the folder fsync'ed;
    on an error it is removed and ``path`` keeps its old content.
    """
    durable_dir(path.parent)
    tmp = temporary_name(path)
    try:
        yield tmp
        fsync_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds its old content or all of ``data``, durably.

    Blocking (two fsyncs, a millisecond or more): call it off the event loop
    and off the media tick, from a writer thread or a worker process.
    """
    with replacing(path) as tmp:
        fd = open_private(tmp)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
