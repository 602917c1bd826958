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
"""

from __future__ import annotations

import os
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
