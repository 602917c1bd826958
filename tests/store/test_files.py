"""Private files and folders: the SQLite database (with its -wal and -shm) and store.files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from callbridge.store import files, layout
from callbridge.store.db import Database
from callbridge.store.files import create_private_file, private_dir, replacing, write_atomic


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The modes must hold under the common 022 umask, not only under serve's 077."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_file_and_its_wal_and_shm_are_the_owners_only(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    path = shared / "data" / "callbridge.sqlite3"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    with database.engine.connect() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
        connection.commit()
        # While a connection is open in WAL mode, both side files exist.
        wal, shm = path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
        assert wal.exists() and shm.exists()
        assert (_mode(path), _mode(wal), _mode(shm)) == (0o600, 0o600, 0o600)
    database.dispose()
    assert _mode(path.parent) == 0o700  # created by us
    assert _mode(shared) == 0o755  # the operator's folder is left as it was


def test_an_existing_database_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    Database(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600


def test_private_dir_creates_every_missing_folder_0700(tmp_path: Path) -> None:
    leaf = private_dir(layout.live_dir(tmp_path / "var", 7))
    for folder in (leaf, leaf.parent, leaf.parent.parent, leaf.parent.parent.parent):
        assert _mode(folder) == 0o700, folder
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    private_dir(loose)
    assert _mode(loose) == 0o700
    kept = tmp_path / "kept"
    kept.mkdir(mode=0o755)
    kept.chmod(0o755)
    private_dir(kept, tighten=False)
    assert _mode(kept) == 0o755
    with pytest.raises(FileExistsError):
        private_dir(create_private_file(tmp_path / "a-file"))


def test_write_atomic_follows_the_one_durability_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temp file in the same folder, fsync of it, rename, fsync of the folder: in that order."""
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        steps.append(("rename", f"{src} -> {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    folder = private_dir(tmp_path / "d")
    path = folder / "status.json"
    write_atomic(path, b"{}")
    tmp = folder / ".status.json.tmp"
    assert steps == [("fsync", str(tmp)), ("rename", f"{tmp} -> {path}"), ("fsync", str(folder))]
    assert path.read_bytes() == b"{}" and _mode(path) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["status.json"]


def test_write_atomic_makes_its_folders_private(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "chunk"
    write_atomic(path, b"x" * 100_000)
    assert path.read_bytes() == b"x" * 100_000
    assert _mode(tmp_path / "a") == _mode(tmp_path / "a" / "b") == 0o700


def test_replacing_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "recording.wav"
    write_atomic(path, b"old")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("encoder died")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["recording.wav"]  # no temp left


def test_replacing_tightens_what_a_library_created_with_the_default_mode(tmp_path: Path) -> None:
    path = tmp_path / "recording.m4a"
    with replacing(path) as tmp:
        tmp.write_bytes(b"mp4")  # under umask 022: 0644, as FFmpeg would leave it
    assert path.read_bytes() == b"mp4" and _mode(path) == 0o600
