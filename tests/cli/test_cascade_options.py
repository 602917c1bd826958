"""`callbridge cascade keygen` and serve's cascade options: the key file is made for its owner
alone, a cascade node needs one, the settings both processes get carry its path and never the
key, and a wrong option is one line and exit 2 before anything starts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from callbridge.cli import main as cli
from tests.cli.served import served

DB = "postgresql://cb@127.0.0.1:1/callbridge"


def _serve(tmp_path: Path, *options: str) -> list[str]:
    return ["--db", DB, "serve", "--data-dir", str(tmp_path / "var"), *options]


def test_keygen_makes_a_key_only_its_owner_reads_and_never_overwrites_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bus.key"
    assert cli.main(["cascade", "keygen", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text()
    assert cli.main(["cascade", "keygen", str(path)]) == cli.EXIT_INPUT
    assert "exists" in capsys.readouterr().err
    assert path.read_text() == key


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--role", "edge"], "needs --bus-key-file"),
        (["--role", "edge", "--bus-key-file", "{open}"], "chmod 600"),
        (["--role", "edge", "--bus-key-file", "{missing}"], "No such file"),
        (["--bus-key-file", "{key}"], "is for a cascade node"),
        (["--role", "edge", "--bus-key-file", "{key}", "--edge", "e=10.0.0.5"], "origin"),
        (["--role", "origin", "--bus-key-file", "{key}", "--edge", "e=somehost"], "NODE_ID=IP"),
        (["--role", "origin", "--bus-key-file", "{key}", "--edge", "10.0.0.5"], "NODE_ID=IP"),
        (["--role", "origin", "--bus-key-file", "{key}", *["--edge=e=10.0.0.5"] * 2], "twice"),
        (["--role", "edge", "--bus-key-file", "{key}", "--standby"], "second origin"),
    ],
)
def test_a_wrong_cascade_option_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], says: str
) -> None:
    key, open_key = tmp_path / "bus.key", tmp_path / "open.key"
    for path in (key, open_key):
        assert cli.main(["cascade", "keygen", str(path)]) == 0
    open_key.chmod(0o644)
    capsys.readouterr()
    paths = {"key": str(key), "open": str(open_key), "missing": str(tmp_path / "none")}
    filled = [option.format(**paths) for option in options]
    assert cli.main(_serve(tmp_path, *filled)) == cli.EXIT_INPUT
    err = capsys.readouterr().err
    assert says in err and len(err.splitlines()) == 1, err


def test_the_settings_carry_the_keys_path_never_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "bus.key"
    assert cli.main(["cascade", "keygen", str(key)]) == 0
    options = ["--role", "origin", "--bus-key-file", str(key)]
    edges = ["--edge", "edge-1=10.0.0.5", "--edge", "edge-2=::1"]
    settings = served(tmp_path, monkeypatch, *options, *edges, db=DB)
    assert settings.bus_key_file == key.absolute()
    assert settings.cascade_edges == (("edge-1", "10.0.0.5"), ("edge-2", "::1"))
    assert settings.standby is False
    assert served(tmp_path, monkeypatch, *options, *edges, "--standby", db=DB).standby is True
    text = key.read_text().strip()
    seen = repr(vars(settings))
    assert text not in seen and repr(bytes.fromhex(text))[2:-1] not in seen
