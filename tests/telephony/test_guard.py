"""Guessing is slowed and refused per caller, never per trunk; strangers may not call;
malformed SIP stops nothing."""

from __future__ import annotations

import socket
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.pcap import passcode_stream, write_pcap
from tests.support.sipp import SCENARIOS, run_sipp
from tests.telephony.conftest import RunningServer, need, start_server

TORTURE = Path(__file__).resolve().parent.parent / "sip" / "data" / "torture"


@pytest.fixture(scope="module")
def guard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Four wrong codes refuse an identity; two slow it (2 s, then 4 s before each answer).
    with start_server(tmp_path_factory.mktemp("guard"), "--max-passcode-failures", "4") as s:
        yield s


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Only a carrier's network may call; the tests call from loopback.
    with start_server(tmp_path_factory.mktemp("closed"), "--trunk", "192.0.2.0/24") as s:
        yield s


GUESSER = "+12125550101"
SPEAKER = "+12125550199"


def _guess(
    server: RunningServer, tmp_path: Path, codes: list[str], display: str, header: str
) -> tuple[float, datetime]:
    """One guesser's call keying ``codes``; returns how long the keys take and when it began."""
    stream = passcode_stream(codes, between_codes=5.0)
    pcap = tmp_path / f"guess-{len(codes)}-{display.split()[0]}.pcap"
    write_pcap(pcap, stream)
    began = datetime.now(UTC)
    call = run_sipp(
        SCENARIOS / "guesser.xml",
        server.sip_target,
        tmp_path,
        substitutions={
            "pcap": str(pcap),
            "bye_timeout_ms": "60000",
            "display": display,
            "from_user": GUESSER,
            "extra_header": header,
        },
        timeout=80,
    )
    assert call.ok, call.output[-2000:] + call.errors[-2000:]
    return stream[-1].at, began


@pytest.mark.sipp
def test_a_guesser_is_counted_by_identity_slowed_refused_and_the_speaker_still_joins(
    guard_server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    server = guard_server
    event = server.create_event()
    wrong = ("1" if not event.passcode.startswith("1") else "2") * 7 + "#"
    # Every call from the same trunk address, and the display name changes each time.
    _guess(server, tmp_path, [wrong] * 3, "Analyst One", "Subject: guess")
    keys_took, began = _guess(server, tmp_path, [wrong], "Jane Doe CEO", "Subject: again")
    refused = run_sipp(
        SCENARIOS / "guesser_refused.xml",
        server.sip_target,
        tmp_path,
        substitutions={"display": "Someone Else", "from_user": GUESSER},
        timeout=20,
    )
    assert refused.ok, refused.output[-2000:] + refused.errors[-2000:]

    # The operator hears of it: the audit trail and the console.
    audit = server.api("GET", f"/api/events/{event.id}/audit").json()
    alerts = [e for e in audit if e["kind"] in ("guesser_slowed", "guesser_refused")]
    assert [(e["kind"], e["caller_id"], e["detail"]["failures"]) for e in alerts] == [
        ("guesser_slowed", f"user:{GUESSER}", 2),
        ("guesser_refused", f"user:{GUESSER}", 4),
    ]
    assert alerts[0]["detail"]["delay_s"] == 2.0
    # The fourth code's answer waited (4 s) before the refusal: the guesser was slowed.
    refused_at = datetime.fromisoformat(alerts[1]["at"])
    assert (refused_at - began).total_seconds() >= keys_took + 4.0 - 0.2
    live = server.api("GET", f"/api/events/{event.id}/live").json()
    assert [(a["standing"], a["identity"]) for a in live["alerts"]] == [
        ("refused", f"user:{GUESSER}"),
        ("slowed", f"user:{GUESSER}"),
    ]
    assert live["alerts"][0]["until"] is not None

    # The trunk is not blocked: the speaker, from the same address and even
    # with the guesser's From (the trunk asserts who they are), still joins.
    pcap = tmp_path / "speaker.pcap"
    write_pcap(pcap, passcode_stream([event.speaker_passcode]))
    speaker = run_sipp(
        SCENARIOS / "named_dial_in.xml",
        server.sip_target,
        tmp_path,
        substitutions={
            "pcap": str(pcap),
            "stay_ms": "6000",
            "display": "Analyst One",
            "from_user": GUESSER,
            "extra_header": f"P-Asserted-Identity: <sip:{SPEAKER}@carrier.example>",
        },
        timeout=40,
        background_check=lambda: server.participants(event.id),
    )
    assert speaker.ok, speaker.output[-2000:] + speaker.errors[-2000:]
    assert speaker.background and speaker.background[0]["role"] == "speaker"


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
