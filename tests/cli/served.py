"""What ``callbridge serve`` with some options would run with: its settings, not a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callbridge.cli import main as cli
from callbridge.config import Settings


def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *options: str, db: str | None = None
) -> Settings:
    """The settings ``serve *options`` hands the server (which is not started), on ``db``
    (a SQLite file in ``tmp_path`` unless given: a cascade's options need PostgreSQL's)."""
    seen: list[Settings] = []

    def serve(settings: Settings, **_: Any) -> None:
        seen.append(settings)

    monkeypatch.setattr("callbridge.server.serve", serve)
    db = db or f"sqlite:///{tmp_path / 'cb.sqlite3'}"
    assert cli.main(["--db", db, "serve", "--data-dir", str(tmp_path / "var"), *options]) == 0
    (settings,) = seen
    return settings
