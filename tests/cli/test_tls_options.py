"""`serve`'s TLS and SRTP options: checked before anything starts, one line when wrong."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from callbridge.cli.main import CliError, _sip_tls, build_parser


def parse(*args: str) -> dict[str, object]:
    return _sip_tls(build_parser().parse_args(["serve", *args]))


def test_srtp_policies_by_trunk_are_read() -> None:
    settings = parse("--srtp", "offered", "--srtp-trunk", "10.0.0.0/8=required")
    assert settings == {
        "srtp": "offered",
        "srtp_trunks": ((ipaddress.ip_network("10.0.0.0/8"), "required"),),
    }


def test_a_wrong_srtp_trunk_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--srtp-trunk", "10.0.0.0/8=sometimes")
    assert "POLICY is off, offered or required" in capsys.readouterr().err


def test_tls_needs_a_certificate_and_a_key_that_load(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="needs --sip-tls-cert and --sip-tls-key"):
        parse("--sip-tls-port", "5061")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(CliError, match="--sip-tls-cert"):
        parse("--sip-tls-port", "5061", "--sip-tls-cert", str(junk), "--sip-tls-key", str(junk))
