"""A stranger's flood must not reach the call's audio: logins on the web, SIP from a non-trunk host.

A real `callbridge serve` holds a live call with one listener, whose phone is
sipp (SIP) and a socket of the test's own (RTP, ``WireListener``), which times
every frame the bridge sends it. While a flood runs, the listener's longest
gap between frames must stay under 60 ms (three frames) and the media clock's
p99 lateness under 2 ms. The stranger is 127.0.0.2; the trunk is 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.flood import WireListener, in_another_process, login_flood, sip_flood
from tests.support.sipp import SCENARIOS, SippResult, run_sipp
from tests.telephony.conftest import RunningServer, need, start_server

pytestmark = pytest.mark.sipp

MAX_GAP = 0.060
MAX_P99_LATENESS_MS = 2.0
FLOOD_SECONDS = 10.0


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    need("sipp")
    with start_server(tmp_path_factory.mktemp("floods"), "--trunk", "127.0.0.1/32") as running:
        yield running


@dataclass
class Heard:
    """What the listener heard while a flood ran, and how late the media clock was."""

    seconds: float
    frames: int
    longest_gap: float
    p99_lateness_ms: float
    flood: Any

    def assert_undisturbed(self) -> None:
        assert self.frames >= 0.95 * self.seconds / 0.02, self
        assert self.longest_gap < MAX_GAP, self
        assert self.p99_lateness_ms < MAX_P99_LATENESS_MS, self


def listen_through(server: RunningServer, tmp_path: Path, flood: Callable[[], Any]) -> Heard:
    """Join a listener to a live call, run ``flood``, and say what the listener heard meanwhile."""
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    listener = WireListener()
    listener.start()
    done: list[SippResult] = []
    sipp = threading.Thread(
        target=lambda: done.append(
            run_sipp(
                SCENARIOS / "listen_on_port.xml",
                server.sip_target,
                tmp_path,
                substitutions={"media_port": str(listener.port), "stay_ms": "40000"},
                timeout=70,
            )
        ),
        daemon=True,
    )
    sipp.start()
    try:
        listener.key_in(event.passcode + "#")
        server.wait_for(
            lambda: any(p["state"] == "connected" for p in server.participants(event.id)),
            timeout=20,
        )
        time.sleep(1.0)
        start = time.monotonic()
        outcome = flood()
        end = time.monotonic()
        time.sleep(0.5)
        stats = server.api("GET", "/api/bridge/stats").json()
        gap = listener.arrivals.longest_gap(start, end)
        frames = len(listener.arrivals.between(start, end))
        p99 = stats["tick_lateness_ms"]["p99"]
        print(
            f"\nflood {outcome}: {end - start:.1f} s, listener got {frames} frames, "
            f"longest gap {gap * 1000:.1f} ms; media clock lateness p99 {p99} ms, "
            f"max {stats['tick_lateness_ms']['max']} ms, ticks skipped {stats['ticks_skipped']}"
        )
        return Heard(end - start, frames, gap, p99, outcome)
    finally:
        listener.close()
        server.api("POST", f"/api/events/{event.id}/end")
        sipp.join(80)


def test_a_login_flood_does_not_reach_the_calls_audio(
    guarded: RunningServer, tmp_path: Path
) -> None:
    heard = listen_through(
        guarded,
        tmp_path,
        lambda: in_another_process(login_flood, guarded.http_url, 120, FLOOD_SECONDS),
    )
    assert heard.flood.attempts >= 120
    heard.assert_undisturbed()


def test_a_sip_flood_from_a_stranger_does_not_reach_the_calls_audio(
    guarded: RunningServer, tmp_path: Path
) -> None:
    heard = listen_through(
        guarded,
        tmp_path,
        lambda: in_another_process(sip_flood, guarded.sip_port, "127.0.0.2", FLOOD_SECONDS),
    )
    assert heard.flood.tcp_connections + heard.flood.udp_datagrams > 1000
    heard.assert_undisturbed()
