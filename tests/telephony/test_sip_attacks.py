"""SIP from a stranger (127.0.0.2) against a server whose only trunk is 127.0.0.1.

Refused at the cheapest point: a UDP INVITE gets one stateless 403 at most,
never repeated and never reflected in bulk; a TCP connection is closed on
accept; a trunk's connections are capped per source. (A listener's audio
through a stranger's SIP flood is timed in test_floods.py, alone.)
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.sip.uac import Uac
from tests.telephony.conftest import DID, RunningServer, start_server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("guarded"), "--trunk", "127.0.0.1/32") as s:
        yield s


def answers(sock: socket.socket, wait: float) -> list[bytes]:
    got = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(65535))
        except TimeoutError:
            break
    return got


def test_a_strangers_invite_over_udp_gets_one_403_never_repeated(guarded: RunningServer) -> None:
    refused_before = guarded.stats()["sip_refused_foreign"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        uac = Uac(sock.getsockname()[1], number=DID.lstrip("+"))
        invite = uac.invite()
        started = time.perf_counter()
        sock.sendto(invite, ("127.0.0.1", guarded.sip_port))
        sock.settimeout(2)
        first = sock.recv(65535)
        refused_in = time.perf_counter() - started
        assert first.startswith(b"SIP/2.0 403"), first[:100]
        # Retransmissions (as a UAC repeats an unanswered INVITE), and then nothing
        # for longer than the 403 would be repeated (T1 doubling to 4 s).
        for _ in range(5):
            sock.sendto(invite, ("127.0.0.1", guarded.sip_port))
            time.sleep(0.05)
        later = answers(sock, 4.5)
    print(f"\na stranger's INVITE refused in {1000 * refused_in:.2f} ms (UDP round trip)")
    assert later == [], [a[:40] for a in later]
    assert guarded.stats()["sip_refused_foreign"] >= refused_before + 6
    assert guarded.log().count("SIP from 127.0.0.2 refused") <= 1


def test_a_strangers_tcp_connection_is_closed_on_accept(guarded: RunningServer) -> None:
    refused_before = guarded.stats()["sip_refused_foreign"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        sock.connect(("127.0.0.1", guarded.sip_port))
        uac = Uac(sock.getsockname()[1], number=DID.lstrip("+"))
        sock.settimeout(2)
        try:
            sock.sendall(uac.invite().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
            data = sock.recv(65535)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        assert data == b""
    assert guarded.stats()["sip_refused_foreign"] > refused_before


def test_a_trunk_may_hold_only_so_many_connections(guarded: RunningServer) -> None:
    from callbridge.bridge.sip_transport import MAX_PER_SOURCE

    held: list[socket.socket] = []
    try:
        for _ in range(MAX_PER_SOURCE):
            sock = socket.create_connection(("127.0.0.1", guarded.sip_port))
            held.append(sock)
        time.sleep(0.3)
        one_more = socket.create_connection(("127.0.0.1", guarded.sip_port))
        one_more.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            assert one_more.recv(1) == b""
        one_more.close()
        # Those within the cap are still open: an OPTIONS over one is answered.
        options = Uac(held[0].getsockname()[1]).options().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        held[0].settimeout(2)
        held[0].sendall(options)
        assert held[0].recv(65535).startswith(b"SIP/2.0 200")
    finally:
        for sock in held:
            sock.close()
    # Closed ones are counted out: a new connection is welcome again.
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", guarded.sip_port)) as sock:
        sock.settimeout(2)
        sock.sendall(Uac(sock.getsockname()[1]).options().replace(b"UDP", b"TCP"))
        assert sock.recv(65535).startswith(b"SIP/2.0 200")
