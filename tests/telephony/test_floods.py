"""A stranger's flood must not reach the call's audio: logins on the web, SIP from a non-trunk host.

A real `callbridge serve` holds a live call with one listener. During a login
flood the listener's phone is sipp (SIP) and a socket of the test's own (RTP,
``WireListener``), which times every frame the bridge sends it: its longest
gap between frames must stay under 60 ms (three frames) and the media clock's
p99 lateness at most a quarter tick. During a SIP flood (INVITEs in bulk over
TCP, or over UDP), the listener (``Phone``) must lose under a tenth of its
frames, and the stranger's requests are counted as refused. The stranger is
127.0.0.2; the trunk is 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.flood import Heard, in_another_process, listen_through, login_flood
from tests.support.phone import Phone
from tests.telephony.conftest import DID, RunningServer, need, start_server

pytestmark = [pytest.mark.sipp, pytest.mark.serial]

# The login flood's 120 strangers each get a try in within 10 s (argon2 is slow on purpose).
LOGIN_FLOOD_SECONDS = 10.0
FLOOD_SECONDS = 5.0
MAX_GAP = 0.060
# A quarter of a 20 ms tick: the listener's jitter buffer never notices. A flood that
# reached the clock showed as ticks skipped (121 in 20 s once), not as milliseconds.
MAX_P99_LATENESS_MS = 5.0


def assert_undisturbed(heard: Heard) -> None:
    print(f"\n{heard}")
    assert heard.frames >= 0.95 * heard.seconds / 0.02, heard
    assert heard.longest_gap < MAX_GAP, heard
    assert heard.p99_lateness_ms <= MAX_P99_LATENESS_MS, heard


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    need("sipp")
    with start_server(tmp_path_factory.mktemp("floods"), "--trunk", "127.0.0.1/32") as running:
        yield running


def test_a_login_flood_does_not_reach_the_calls_audio(
    guarded: RunningServer, tmp_path: Path
) -> None:
    heard = listen_through(
        guarded,
        tmp_path,
        lambda _: in_another_process(login_flood, guarded.http_url, 120, LOGIN_FLOOD_SECONDS),
    )
    assert heard.flood.attempts >= 120
    assert_undisturbed(heard)


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
        refused_before = guarded.stats().get("sip_refused_foreign", 0)
        script = FLOOD if transport == "tcp" else UDP_FLOOD
        start = time.monotonic()
        # nice: the flood stands for a stranger's own machine (see tests/support/flood.py).
        command = [sys.executable, "-c", script, str(guarded.sip_port), str(FLOOD_SECONDS)]
        flood = subprocess.run(
            ["nice", "-n", "10", *command],
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
    lateness = guarded.stats()["tick_lateness_ms"]
    print(
        f"\nSIP/{transport.upper()} flood from 127.0.0.2: {connections} "
        f"{'connections' if transport == 'tcp' else 'datagrams'} in {end - start:.1f} s; "
        f"listener got {received} of {expected:.0f} frames ({100 * loss:.1f}% lost), "
        f"longest gap {1000 * gap:.0f} ms; tick lateness p99 {lateness['p99']} ms"
    )
    assert connections > 100, flood.stderr
    # (UDP: what the socket's queue held; the rest the kernel dropped.)
    assert guarded.stats()["sip_refused_foreign"] >= refused_before + min(connections // 2, 1000)
    # Before: two thirds lost. The machine running the tests is shared, so the
    # bound is loose; the figure printed above is the measurement.
    assert loss < 0.10
    assert guarded.process.poll() is None
