"""Guessing is not allowed, strangers may not call, and malformed SIP stops nothing."""

from __future__ import annotations

import socket
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pcap import passcode_stream, write_pcap
from tests.support.sipp import SCENARIOS, run_sipp
from tests.telephony.conftest import RunningServer, need, start_server

TORTURE = Path(__file__).resolve().parent.parent / "sip" / "data" / "torture"


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("strict"), "--max-passcode-failures", "3") as s:
        yield s


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Only a carrier's network may call; the tests call from loopback.
    with start_server(tmp_path_factory.mktemp("closed"), "--trunk", "192.0.2.0/24") as s:
        yield s


@pytest.mark.sipp
def test_repeated_wrong_codes_get_the_source_refused(
    strict_server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    event = strict_server.create_event()
    wrong = "1" if not event.passcode.startswith("1") else "2"
    pcap = tmp_path / "wrong.pcap"
    write_pcap(pcap, passcode_stream([wrong * 7] * 3, between_codes=2.0))
    guessing = run_sipp(
        SCENARIOS / "hung_up_on.xml",
        strict_server.sip_target,
        tmp_path,
        substitutions={"pcap": str(pcap), "bye_timeout_ms": "30000"},
        timeout=45,
    )
    assert guessing.ok, guessing.output[-2000:]
    refused = run_sipp(SCENARIOS / "refused.xml", strict_server.sip_target, tmp_path, timeout=20)
    assert refused.ok, refused.output[-2000:] + refused.errors[-2000:]
    assert "too many wrong passcodes" in strict_server.log()


@pytest.mark.sipp
def test_invites_from_outside_the_trunk_networks_get_403(
    closed_server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    refused = run_sipp(SCENARIOS / "refused.xml", closed_server.sip_target, tmp_path, timeout=20)
    assert refused.ok, refused.output[-2000:] + refused.errors[-2000:]
    assert "not an allowed trunk address" in closed_server.log()


def _exchange(sock: socket.socket, data: bytes, port: int, call_id: bytes, wait: float) -> bytes:
    """Send, then return the first final answer for ``call_id`` (b"" if none came).

    Other answers (a 100 Trying, an earlier case's retransmitted error
    response) are skipped.
    """
    sock.sendto(data, ("127.0.0.1", port))
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            answer = sock.recv(65535)
        except TimeoutError:
            break
        if b"Call-ID: " + call_id + b"\r\n" in answer and not answer.startswith(b"SIP/2.0 100"):
            return answer
    return b""


def test_torture_messages_over_udp_never_stop_the_server(server: RunningServer) -> None:
    expected: dict[str, str] = tomllib.loads((TORTURE / "expected.toml").read_text())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for n, (name, outcome) in enumerate(sorted(expected.items()), start=100):
            data = (TORTURE / f"{name}.sip").read_bytes().replace(b"{n}", str(n).encode())
            call_id = f"torture-{n}@127.0.0.1".encode()
            answer = _exchange(
                sock, data, server.sip_port, call_id, 0.4 if outcome == "drop" else 2
            )
            if outcome == "drop":
                assert answer == b"", name
            else:
                assert answer.split(b" ")[1:2] == [outcome.encode()], (name, answer[:80])
            ping = (TORTURE / "plain_options.sip").read_bytes().replace(b"{n}", f"p{n}".encode())
            pong = _exchange(sock, ping, server.sip_port, f"torture-p{n}@127.0.0.1".encode(), 2)
            assert pong.startswith(b"SIP/2.0 200"), name
    assert server.process.poll() is None
