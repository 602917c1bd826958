"""SIP from a stranger (127.0.0.2) against a server whose only trunk is 127.0.0.1.

Refused at the cheapest point: a UDP INVITE gets one stateless 403 at most,
never repeated and never reflected in bulk; a TCP connection is closed on
accept; a trunk's connections are capped per source. And a listener keeps
its audio while a stranger floods SIP over TCP.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sip.uac import Uac
from tests.support.phone import Phone
from tests.telephony.conftest import DID, RunningServer, start_server

# Timing-sensitive: runs alone, after the parallel part of the suite (scripts/test).
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("guarded"), "--trunk", "127.0.0.1/32") as s:
        yield s


def stats(server: RunningServer) -> dict[str, Any]:
    response = server.api("GET", "/api/bridge/stats")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


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
    refused_before = stats(guarded)["sip_refused_foreign"]
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
    assert stats(guarded)["sip_refused_foreign"] >= refused_before + 6
    assert guarded.log().count("SIP from 127.0.0.2 refused") <= 1


def test_a_strangers_tcp_connection_is_closed_on_accept(guarded: RunningServer) -> None:
    refused_before = stats(guarded)["sip_refused_foreign"]
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
    assert stats(guarded)["sip_refused_foreign"] > refused_before


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


FLOOD = textwrap.dedent(
    """
    import socket, sys, time
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    invite = (
        "INVITE sip:19135550123@127.0.0.1 SIP/2.0\\r\\n"
        "Via: SIP/2.0/TCP 127.0.0.2;branch=z9hG4bKx\\r\\n"
        "From: <sip:x@127.0.0.2>;tag=1\\r\\nTo: <sip:19135550123@127.0.0.1>\\r\\n"
        "Call-ID: flood\\r\\nCSeq: 1 INVITE\\r\\nContent-Length: 0\\r\\n\\r\\n"
    ).encode() * 20
    end, connections = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        try:
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall(invite)
        except OSError:
            pass
        finally:
            sock.close()
        connections += 1
    print(connections)
    """
)
UDP_FLOOD = textwrap.dedent(
    """
    import socket, sys, time
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    invite = (
        "INVITE sip:19135550123@127.0.0.1 SIP/2.0\\r\\n"
        "Via: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKx;rport\\r\\n"
        "From: <sip:x@127.0.0.2>;tag=1\\r\\nTo: <sip:19135550123@127.0.0.1>\\r\\n"
        "Call-ID: flood\\r\\nCSeq: 1 INVITE\\r\\nContent-Length: 0\\r\\n\\r\\n"
    ).encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.2", 0))
    end, sent = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        for _ in range(100):
            try:
                sock.sendto(invite, ("127.0.0.1", port))
            except OSError:
                pass
        sent += 100
    print(sent)
    """
)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_listener_keeps_its_audio_through_a_sip_flood(
    guarded: RunningServer, transport: str
) -> None:
    event = guarded.create_event()
    assert guarded.api("POST", f"/api/events/{event.id}/start").status_code == 200
    with Phone(guarded.sip_port, DID) as listener:
        listener.call()
        listener.press(event.passcode + "#")
        guarded.wait_for(lambda: guarded.participants(event.id))
        time.sleep(1.0)
        refused_before = stats(guarded).get("sip_refused_foreign", 0)
        script = FLOOD if transport == "tcp" else UDP_FLOOD
        start = time.monotonic()
        flood = subprocess.run(
            [sys.executable, "-c", script, str(guarded.sip_port), "10"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        end = time.monotonic()
        time.sleep(0.2)
        received = listener.heard.count(start, end)
        gap = listener.heard.longest_gap(since=start)
    connections = int(flood.stdout.strip() or 0)
    expected = (end - start) / 0.020
    loss = max(0.0, 1 - received / expected)
    lateness = stats(guarded)["tick_lateness_ms"]
    print(
        f"\nSIP/{transport.upper()} flood from 127.0.0.2: {connections} "
        f"{'connections' if transport == 'tcp' else 'datagrams'} in {end - start:.1f} s; "
        f"listener got {received} of {expected:.0f} frames ({100 * loss:.1f}% lost), "
        f"longest gap {1000 * gap:.0f} ms; tick lateness p99 {lateness['p99']} ms"
    )
    assert connections > 100, flood.stderr
    # (UDP: what the socket's queue held; the rest the kernel dropped.)
    assert stats(guarded)["sip_refused_foreign"] >= refused_before + min(connections // 2, 1000)
    # Before: two thirds lost. The machine running the tests is shared, so the
    # bound is loose; the figure printed above is the measurement.
    assert loss < 0.10
    assert guarded.process.poll() is None
