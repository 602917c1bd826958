"""The torture messages against the endpoint in memory (the server replays them over UDP too)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from callbridge.sip.endpoint import EndpointConfig, SipEndpoint
from callbridge.sip.message import SipResponse, parse_message

TORTURE = Path(__file__).parent / "data" / "torture"
EXPECTED: dict[str, str] = tomllib.loads((TORTURE / "expected.toml").read_text())


def load(name: str, n: int) -> bytes:
    return (TORTURE / f"{name}.sip").read_bytes().replace(b"{n}", str(n).encode())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message(name: str) -> None:
    ep = SipEndpoint(EndpointConfig())
    ep.receive_datagram(load(name, 1), ("127.0.0.1", 5099), 0.0)
    sent = ep.datagrams_to_send()
    expected = EXPECTED[name]
    if expected == "drop":
        assert sent == []
    else:
        assert len(sent) == 1, sent
        response = parse_message(sent[0][0])
        assert isinstance(response, SipResponse)
        assert response.status == int(expected), response.reason
    # Whatever came before, the endpoint still answers OPTIONS.
    ep.receive_datagram(load("plain_options", 2), ("127.0.0.1", 5099), 1.0)
    (ok,) = ep.datagrams_to_send()
    assert ok[0].startswith(b"SIP/2.0 200")


def test_there_are_enough_cases() -> None:
    assert len(EXPECTED) >= 25
