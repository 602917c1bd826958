"""A stranger's flood must not reach the call's audio: logins on the web, SIP from a non-trunk host.

A real `callbridge serve` holds a live call with one listener, whose phone is
sipp (SIP) and a socket of the test's own (RTP, ``WireListener``), which times
every frame the bridge sends it. While a flood runs, the listener's longest
gap between frames must stay under 60 ms (three frames) and the media clock's
p99 lateness under 2 ms. The stranger is 127.0.0.2; the trunk is 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.flood import Heard, in_another_process, listen_through, login_flood, sip_flood
from tests.telephony.conftest import RunningServer, need, start_server

pytestmark = [pytest.mark.sipp, pytest.mark.serial]

# The login flood's 120 strangers each get a try in within 10 s (argon2 is slow on purpose).
LOGIN_FLOOD_SECONDS = 10.0
FLOOD_SECONDS = 6.0
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


def test_a_sip_flood_from_a_stranger_does_not_reach_the_calls_audio(
    guarded: RunningServer, tmp_path: Path
) -> None:
    heard = listen_through(
        guarded,
        tmp_path,
        lambda _: in_another_process(sip_flood, guarded.sip_port, "127.0.0.2", FLOOD_SECONDS),
    )
    assert heard.flood.tcp_connections + heard.flood.udp_datagrams > 1000
    assert_undisturbed(heard)
