"""Trunks as configuration: the file checked, passwords hidden, the order of failover."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.bridge.trunks import (
    Attempt,
    DialOver,
    Trunk,
    TrunkChooser,
    TrunkConfigError,
    load,
    parse,
)
from callbridge.sip.uac import Failed

FILE = """
[dial]
countries = [1, 44]

[[trunk]]
name = "backup"
addresses = ["192.0.2.20", "192.0.2.21"]
priority = 5

[[trunk]]
name = "main"
host = "sip.carrier.example"
username = "bridge"
password = "hunter2-secret"
register = true
priority = 1
timeout = 3

[[trunk]]
name = "inbound-only"
addresses = ["192.0.2.30"]
outbound = false
"""


def test_the_file_is_read_and_the_password_never_shown() -> None:
    config = parse(FILE)
    main = next(t for t in config.trunk if t.name == "main")
    assert main.registers and main.credentials is not None
    assert main.credentials.password == "hunter2-secret"
    assert "hunter2" not in repr(config) and "hunter2" not in repr(main.credentials)
    assert "hunter2" not in str(config.model_dump())
    assert config.dial.countries == (1, 44)
    # Calls placed offer G.711 unless the trunk lists a wideband codec.
    assert main.codecs == ("PCMU", "PCMA")
    wide = parse("[[trunk]]\nname = 'w'\nhost = 'h'\ncodecs = ['G722', 'PCMU']\n").trunk[0]
    assert wide.codecs == ("G722", "PCMU")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[trunk]]\nname = 'a'\n", "host or addresses"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\nusername = 'u'\n", "go together"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\nregister = true\n", "needs a username"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\ntransport = 'udp'\ntls_ca = '/etc/hosts'\n", "need"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\ntransport = 'tls'\ntls_key = '/etc/hosts'\n", "go"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\ntransport = 'tls'\ntls_ca = '/no/ca'\n", "no such"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\nsrtp = 'sometimes'\n", "trunk.0.srtp"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\ntransport = 'sctp'\n", "trunk.0.transport"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\n[[trunk]]\nname = 'a'\nhost = 'i'\n", "unique"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\ncolour = 'red'\n", "colour"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\ncodecs = ['G729']\n", "codecs: G729; we speak"),
        ("[[trunk]]\nname = 'a'\nhost = 'h'\ncodecs = []\n", "codecs: none given"),
        ("not toml [", "not TOML"),
    ],
)
def test_a_bad_file_says_where(text: str, says: str) -> None:
    with pytest.raises(TrunkConfigError, match=says):
        parse(text)


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trunks.toml"
    path.write_text(FILE)
    path.chmod(0o644)
    with pytest.raises(TrunkConfigError, match="chmod 600"):
        load(path)
    path.chmod(0o600)
    assert len(load(path).trunk) == 3


def _chooser() -> TrunkChooser:
    config = parse(FILE)
    resolved = {"main": ("192.0.2.10",), "backup": ("192.0.2.20", "192.0.2.21")}
    return TrunkChooser(
        [Trunk(spec, resolved.get(spec.name, spec.addresses)) for spec in config.trunk]
    )


def test_failover_in_priority_order_on_timeout_and_5xx_only() -> None:
    chooser = _chooser()
    first = chooser.start("d1")
    assert isinstance(first, Attempt) and first.trunk == "main"
    assert first.route.address == ("192.0.2.10", 5060) and first.route.timeout == 3
    second = chooser.failed(Failed(first.call_id, 408, "no answer", timed_out=True))
    assert isinstance(second, Attempt) and second.route.address == ("192.0.2.20", 5060)
    third = chooser.failed(Failed(second.call_id, 503, "Service Unavailable"))
    assert isinstance(third, Attempt) and third.route.address == ("192.0.2.21", 5060)
    over = chooser.failed(Failed(third.call_id, 502, "Bad Gateway"))
    assert over == DialOver("d1", 502, "Bad Gateway")
    assert chooser.failovers == 2


def test_a_refusal_ends_the_dial_there() -> None:
    chooser = _chooser()
    first = chooser.start("d2")
    assert isinstance(first, Attempt)
    over = chooser.failed(Failed(first.call_id, 407, "wrong password", auth_failed=True))
    assert over == DialOver("d2", 407, "wrong password", auth_failed=True)
    assert chooser.failed(Failed(first.call_id, 500, "late")) is None
    answered = chooser.start("d3")
    assert isinstance(answered, Attempt)
    assert chooser.answered(answered.call_id) == "d3"


def test_serve_refuses_a_bad_trunks_file_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from callbridge.cli.main import main

    path = tmp_path / "trunks.toml"
    path.write_text(FILE)
    path.chmod(0o640)
    db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert main(["--db", db, "serve", "--trunks", str(path)]) == 2
    err = capsys.readouterr().err
    assert "chmod 600" in err and "hunter2" not in err
    path.write_text(FILE.replace("priority = 5", "priority = 5\ntransport = 'tls'\ntls_ca = '/no'"))
    path.chmod(0o600)
    assert main(["--db", db, "serve", "--trunks", str(path)]) == 2
    assert "/no: no such file" in capsys.readouterr().err
