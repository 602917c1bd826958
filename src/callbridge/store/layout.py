"""The data folder's layout: where every process (and every test) finds each file.

One place spells the names, so the media plane that writes a file, the web
app that serves it and the command line that reads it cannot drift apart::

    <data>/secret_key                      the session cookies' key (config)
    <data>/recordings/event-<id>/<stamp>/  one recording (media.recording); after the call
                                           its replay, download and transcript
                                           (replay.library names the files inside)
    <data>/webcast/event-<id>/live/        the live packager's LL-HLS output (webcast.live)
    <data>/webcast/event-<id>/captions.*   the live captions' transcript and status
                                           (webcast.captions names them)
    <data>/decks/event-<id>/               the presenters' deck (slides.deck)
    <data>/run/control.sock                the media plane's control socket (control)
    <data>/run/journal.sqlite3             the media plane's writes the database has not
                                           taken yet (bridge.journal)
    <data>/cache/                          the cache tier's working folder (edge)

Functions named after a tree (``recordings``, ``webcasts``, ``decks``) take the
data folder; ``event_folder`` and the ``*_under`` helpers take a tree's root,
for code that is handed the root alone (the bridge's configuration, the replay
library).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

RECORDINGS = "recordings"
WEBCASTS = "webcast"
DECKS = "decks"
RUN = "run"
CACHE = "cache"
LIVE = "live"
CONTROL_SOCKET = "control.sock"
JOURNAL = "journal.sqlite3"
SECRET_KEY = "secret_key"
EVENT_PREFIX = "event-"
# sun_path is 108 bytes on Linux.
_MAX_SOCKET_PATH = 100


def event_folder(root: Path, event_id: int) -> Path:
    """The event's folder under one of the trees' roots (recordings, webcast, decks)."""
    return root / f"{EVENT_PREFIX}{event_id}"


def event_folders(root: Path) -> list[Path]:
    """Every event's folder under a tree's root, sorted by name; none if the root is absent."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob(f"{EVENT_PREFIX}*") if p.is_dir())


def recording_under(recordings_root: Path, event_id: int, stamp: str) -> Path:
    """One recording's folder (``stamp``: the UTC time it started, ``20261105T213000Z``)."""
    return event_folder(recordings_root, event_id) / stamp


def live_under(webcasts_root: Path, event_id: int) -> Path:
    """The live packager's folder, under the webcast tree's root."""
    return event_folder(webcasts_root, event_id) / LIVE


# -- from the data folder ----------------------------------------------------------------------


def recordings(data_dir: Path) -> Path:
    return data_dir / RECORDINGS


def webcasts(data_dir: Path) -> Path:
    return data_dir / WEBCASTS


def decks(data_dir: Path) -> Path:
    return data_dir / DECKS


def cache_dir(data_dir: Path) -> Path:
    return data_dir / CACHE


def secret_key(data_dir: Path) -> Path:
    return data_dir / SECRET_KEY


def event_recordings(data_dir: Path, event_id: int) -> Path:
    """The folder holding the event's recordings (one subfolder per start of the call)."""
    return event_folder(recordings(data_dir), event_id)


def recording_dir(data_dir: Path, event_id: int, stamp: str) -> Path:
    return recording_under(recordings(data_dir), event_id, stamp)


def event_webcast(data_dir: Path, event_id: int) -> Path:
    """The event's webcast folder: the live stream's folder and the live captions' files."""
    return event_folder(webcasts(data_dir), event_id)


def live_dir(data_dir: Path, event_id: int) -> Path:
    return live_under(webcasts(data_dir), event_id)


def deck_dir(data_dir: Path, event_id: int) -> Path:
    return event_folder(decks(data_dir), event_id)


def control_socket(data_dir: Path) -> Path:
    """Where the media plane listens for the web app: in the data folder, if the path fits.

    A Unix socket's path must fit ``sun_path``; a data folder deep in the tree
    gets a folder of its own under the temporary directory instead, named by a
    digest of the path it would have had, so both processes find the same one.
    """
    path = (data_dir / RUN / CONTROL_SOCKET).absolute()
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"callbridge-{digest}" / CONTROL_SOCKET


def journal(data_dir: Path) -> Path:
    """The media plane's journal of writes waiting for the database (``bridge.journal``)."""
    return data_dir / RUN / JOURNAL
