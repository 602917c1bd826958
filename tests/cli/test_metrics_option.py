"""`serve --metrics-listen`: the address the metrics listener binds, or one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.cli import main as cli
from tests.cli.served import served as _served


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
