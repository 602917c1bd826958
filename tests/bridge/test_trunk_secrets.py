"""Trunk passwords sealed at rest: sealed by the command, opened by load, nowhere in the clear."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from callbridge.bridge.trunk_secrets import (
    SecretError,
    new_key_file,
    read_key_file,
    seal,
    unseal,
)
from callbridge.bridge.trunks import TrunkConfigError, load
from callbridge.cli.main import main

PASSWORD = "Sealed-hunter2-Bassoon"


def test_a_sealed_password_opens_only_for_its_trunk_and_key(tmp_path: Path) -> None:
    new_key_file(tmp_path / "a.key")
    new_key_file(tmp_path / "b.key")
    key, other = read_key_file(tmp_path / "a.key"), read_key_file(tmp_path / "b.key")
    sealed = seal(key, "carrier", PASSWORD)
    assert sealed.startswith("sealed:v1:") and PASSWORD not in sealed
    assert seal(key, "carrier", PASSWORD) != sealed  # a fresh nonce each time
    assert unseal(key, "carrier", sealed) == PASSWORD
    for wrong_key, trunk in ((other, "carrier"), (key, "another")):
        with pytest.raises(SecretError, match="does not open"):
            unseal(wrong_key, trunk, sealed)
    with pytest.raises(SecretError, match="not base64"):
        unseal(key, "carrier", "sealed:v1:***")
    with pytest.raises(FileExistsError):
        new_key_file(tmp_path / "a.key")
    (tmp_path / "a.key").chmod(0o640)
    with pytest.raises(SecretError, match="chmod 600"):
        read_key_file(tmp_path / "a.key")


def test_the_command_seals_from_stdin_and_load_opens_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "trunks.key"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["trunk-password", "--trunk", "carrier", "--key", str(key), "--new-key"]) == 0
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err and out.startswith('password = "sealed:v1:')
    assert key.stat().st_mode & 0o777 == 0o600
    trunks = tmp_path / "trunks.toml"
    text = f'key_file = "{key}"\n\n[[trunk]]\nname = "carrier"\nhost = "192.0.2.1"\n'
    trunks.write_text(text + 'username = "bridge"\n' + out)
    trunks.chmod(0o600)
    assert PASSWORD not in trunks.read_text()
    (spec,) = load(trunks).trunk
    assert spec.credentials is not None and spec.credentials.password == PASSWORD
    # Moved to another trunk, or without its key: refused, saying why (no secret).
    trunks.write_text(text.replace('"carrier"', '"other"') + 'username = "bridge"\n' + out)
    with pytest.raises(TrunkConfigError, match="another trunk"):
        load(trunks)
    trunks.write_text(text.split("\n", 2)[2] + 'username = "bridge"\n' + out)
    with pytest.raises(TrunkConfigError, match="needs key_file"):
        load(trunks)
