"""serve's NAT and in-band DTMF options: what the settings get, and a wrong one is one line."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from callbridge.cli import main as cli
from tests.cli.served import served as _served


def test_external_ip_sets_both_and_local_nets_keep_the_private_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _served(
        tmp_path, monkeypatch,
        "--external-ip", "203.0.113.10", "--local-net", "10.0.0.0/8", "--local-net", "fd00::/8",
    )  # fmt: skip
    assert (settings.sip_advertise, settings.sip_advertise_port) == ("203.0.113.10", None)
    assert settings.media_advertise == "203.0.113.10"
    assert settings.local_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert settings.inband_dtmf_networks == ()


def test_sip_and_media_are_advertised_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _served(
        tmp_path, monkeypatch,
        "--external-ip", "203.0.113.10",
        "--sip-advertise", "sip.example.com:5080", "--media-advertise", "203.0.113.11",
    )  # fmt: skip
    assert (settings.sip_advertise, settings.sip_advertise_port) == ("sip.example.com", 5080)
    assert settings.media_advertise == "203.0.113.11"


def test_inband_dtmf_listens_on_every_trunk_or_the_networks_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trunk = ipaddress.ip_network("192.0.2.0/24")
    every = _served(tmp_path, monkeypatch, "--trunk", str(trunk), "--inband-dtmf")
    assert every.inband_dtmf_networks == (trunk,)
    some = _served(
        tmp_path, monkeypatch, "--trunk", str(trunk), "--inband-dtmf-from", "192.0.2.64/26"
    )
    assert some.inband_dtmf_networks == (ipaddress.ip_network("192.0.2.64/26"),)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--local-net", "10.0.0.0/8"], "--local-net"),
        (["--sip-advertise", "a b"], "HOST[:PORT]"),
        (["--sip-advertise", "host:99999"], "HOST[:PORT]"),
        (["--external-ip", "example.com"], "--external-ip"),
        (["--media-advertise", "10.0.0.1/8"], "--media-advertise"),
    ],
)
def test_a_wrong_nat_option_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], says: str
) -> None:
    url = f"sqlite:///{tmp_path / 'cb.sqlite3'}"
    try:
        code = cli.main(["--db", url, "serve", "--data-dir", str(tmp_path / "var"), *options])
    except SystemExit as exit:  # argparse's own: usage and one line
        code = exit.code
    assert code in (cli.EXIT_INPUT, 2)
    err = capsys.readouterr().err
    assert says in err, err
