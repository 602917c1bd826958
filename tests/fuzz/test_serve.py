"""Issue 11, attack 4, against a real ``callbridge serve``: a malformed INVITE costs no port.

A Unicode digit such as "²" in an SDP port passed ``str.isdigit()`` but not
``int()``: the INVITE got 100 Trying and no final answer, and its RTP port
was never released, so a few hundred of them (the range here has 200 ports)
left every real caller with 503. Now each gets its 400 (or 488), ports in
use stay equal to live legs, and a real INVITE afterwards is answered.

The TCP half: the framer found Content-Length only as the last header; a
trunk that puts it first, or writes ``l:``, was never answered over TCP.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callbridge.sip.message import SipResponse, StreamFramer, parse_message
from tests.fuzz.targets import SDP_SAMPLES, SIP_SAMPLES, mutate
from tests.sip.uac import OFFER, Uac
from tests.telephony.conftest import DID, RunningServer, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("server")) as running:
        yield running


def _final(sock: socket.socket, call_id: str, timeout: float = 5.0) -> SipResponse:
    """The first final response for ``call_id`` (provisional ones and others skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65535)
        except TimeoutError:
            raise AssertionError(f"no final answer for {call_id}") from None
        message = parse_message(data)
        if (
            isinstance(message, SipResponse)
            and message.call_id == call_id
            and message.status >= 200
        ):
            return message


BAD_OFFERS = [
    OFFER.replace("m=audio 40000", f"m=audio 4000{digit}") for digit in ("²", "٣", "０", "𝟗")
] + [
    OFFER.replace("m=audio 40000", "m=audio 65536"),
    OFFER.replace("m=audio 40000", "m=audio 1" + "0" * 5000),
    OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 stranger.example"),
]


def _stats(server: RunningServer) -> dict[str, int]:
    body = server.api("GET", "/api/bridge/stats").json()
    return {"legs": body["legs"], "ports": body["rtp_ports_in_use"]}


def test_malformed_offers_are_answered_and_leak_no_port(server: RunningServer) -> None:
    number = DID.lstrip("+")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        statuses = []
        for i in range(250):  # more INVITEs than the server has RTP ports (200)
            uac = Uac(port, number)
            sock.sendto(uac.invite(BAD_OFFERS[i % len(BAD_OFFERS)]), ("127.0.0.1", server.sip_port))
            final = _final(sock, uac.call_id)
            statuses.append(final.status)
            uac.learn(final.serialize())
            sock.sendto(uac.ack_error(), ("127.0.0.1", server.sip_port))
        assert set(statuses) <= {400, 488}, sorted(set(statuses))
        assert statuses.count(488) == 250 // len(BAD_OFFERS)
        assert _stats(server) == {"legs": 0, "ports": 0}

        # A real caller after the flood is answered, not refused with 503.
        uac = Uac(port, number)
        sock.sendto(uac.invite(), ("127.0.0.1", server.sip_port))
        answer = _final(sock, uac.call_id)
        assert answer.status == 200, answer.reason
        assert _stats(server) == {"legs": 1, "ports": 1}
        uac.learn(answer.serialize())
        sock.sendto(uac.ack_2xx(), ("127.0.0.1", server.sip_port))
        sock.sendto(uac.bye(), ("127.0.0.1", server.sip_port))
        assert _final(sock, uac.call_id).status == 200
        server.wait_for(lambda: _stats(server) == {"legs": 0, "ports": 0})
    assert "Traceback" not in server.log()


def _options(uac: Uac, spelling: str, first: bool) -> bytes:
    """An OPTIONS with a 4-byte body, its Content-Length spelt ``spelling``, first or mid-way."""
    head, _, _ = uac.options().partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Content-Length")]
    lines.insert(1 if first else 4, f"{spelling}4".encode())
    return b"\r\n".join(lines) + b"\r\n\r\nping"


def test_tcp_content_length_anywhere_and_compact(server: RunningServer, tmp_path: Path) -> None:
    with socket.create_connection(("127.0.0.1", server.sip_port), timeout=5) as conn:
        port = conn.getsockname()[1]
        uacs = [Uac(port) for _ in range(4)]
        messages = [
            _options(uacs[0], "Content-Length: ", first=True),
            _options(uacs[1], "l: ", first=False),
            _options(uacs[2], "content-LENGTH:", first=False),
            _options(uacs[3], "L :", first=True),
        ]
        stream = b"\r\n\r\n".join(messages)
        conn.sendall(stream[:100])
        for i in range(100, 300):  # a trickle, then the rest at once
            conn.sendall(stream[i : i + 1])
        conn.sendall(stream[300:])
        framer = StreamFramer()
        answers: list[SipResponse] = []
        while len(answers) < 4:
            chunk = conn.recv(65535)
            assert chunk, f"the server closed the connection after {len(answers)} answers"
            for data in framer.feed(chunk):
                response = parse_message(data, stream=True)
                assert isinstance(response, SipResponse)
                answers.append(response)
    assert [a.status for a in answers] == [200] * 4
    assert [a.call_id for a in answers] == [u.call_id for u in uacs]


def test_after_a_fuzz_run_ports_in_use_equal_live_legs(server: RunningServer) -> None:
    """300 mutated INVITEs (the SDP or the whole message), then the invariant of issue 11."""
    rng = random.Random(11)
    number = DID.lstrip("+")
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        for i in range(300):
            uac = Uac(port, number)
            if i % 2:
                body = mutate(OFFER.encode(), rng, SDP_SAMPLES).decode("utf-8", "replace")
                data = uac.invite(body)
            else:
                data = mutate(uac.invite(), rng, SIP_SAMPLES)
            sock.sendto(data, ("127.0.0.1", server.sip_port))
            sent += 1
            if i % 20 == 19:
                time.sleep(0.05)  # a burst, not a flood: this is about parsing
        # Every call the server did answer is hung up on by its media timeout;
        # until then, and after, each port in use belongs to a live leg.
        time.sleep(1.0)
        first = _stats(server)
        assert first["ports"] == first["legs"], first
        server.wait_for(lambda: _stats(server) == {"legs": 0, "ports": 0}, timeout=30)
    assert sent == 300
    log = server.log()
    assert "Traceback" not in log
    assert "crashed" not in log
