"""`serve --metrics-listen`: the address the metrics listener binds, or one line and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callbridge.cli import main as cli
from callbridge.config import Settings


def _served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *options: str) -> Settings:
    served: list[Settings] = []

    def serve(settings: Settings, **_: Any) -> None:
        served.append(settings)

    monkeypatch.setattr("callbridge.server.serve", serve)
    db = f"sqlite:///{tmp_path / 'cb.sqlite3'}"
    assert cli.main(["--db", db, "serve", "--data-dir", str(tmp_path / "var"), *options]) == 0
    (settings,) = served
    return settings


def test_off_unless_given_and_loopback_unless_a_host_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _served(tmp_path, monkeypatch).metrics_listen is None
    assert _served(tmp_path, monkeypatch, "--metrics-listen", "9464").metrics_listen == (
        "127.0.0.1",
        9464,
    )
    listen = _served(tmp_path, monkeypatch, "--metrics-listen", "[::1]:9464").metrics_listen
    assert listen == ("::1", 9464)


def test_a_wrong_address_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cb.sqlite3'}"
    argv = ["--db", db, "serve", "--data-dir", str(tmp_path / "var"), "--metrics-listen", "x:y"]
    assert cli.main(argv) == cli.EXIT_INPUT
    err = capsys.readouterr().err
    assert "--metrics-listen" in err and len(err.splitlines()) == 1, err
