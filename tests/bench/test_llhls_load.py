"""The C LL-HLS load generator against a real live webcast of `callbridge serve`.

A handful of listeners for a few seconds: each must receive parts at the
stream's own rate, every part in turn, without a stall or an error, and the
figures the benchmarks read (requests, latencies, CPU) must be there.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from bench.llhls import build, run

from tests.telephony.conftest import RunningServer, start_server

CLIENTS = 5
SECONDS = 5.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    """A server with a live call (silence: serving costs the same) and its playlist path."""
    with start_server(tmp_path_factory.mktemp("llhls")) as server:
        event = server.create_event(timedelta(minutes=-1), registration="off")
        server.api("POST", f"/api/events/{event.id}/start").raise_for_status()
        path = f"/webcast/{event.id}/live/index.m3u8"
        server.wait_for(lambda: httpx.get(server.http_url + path).status_code == 200, timeout=20)
        yield server, path


def test_builds_once(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    binary = build(into=tmp_path)
    built_at = binary.stat().st_mtime_ns
    assert build(into=tmp_path) == binary
    assert binary.stat().st_mtime_ns == built_at


def test_listeners_get_every_part_in_time(live: tuple[RunningServer, str]) -> None:
    server, path = live
    port = int(server.http_url.rsplit(":", 1)[1])
    started = time.monotonic()
    result = run("127.0.0.1", port, path, CLIENTS, SECONDS, ramp_s=0.5)
    assert time.monotonic() - started < SECONDS + 10

    assert (result.started, result.connected, result.clients_without_parts) == (CLIENTS, CLIENTS, 0)
    assert result.errors == {}, result.raw
    assert result.stalled_clients == 0 and result.stall_events == 0, result.raw
    assert result.parts_skipped == 0, result.raw
    assert 0.2 < result.part_target < 0.25  # 1024 AAC frames of 48 kHz, as packaged
    # Every client keeps up with the live edge: its own rate is the stream's.
    rate = result.stream_parts_per_s
    assert 0.9 * rate < result.client_parts_per_s_min <= result.client_parts_per_s_max < 1.1 * rate
    assert 0.85 * rate < result.parts_per_client_per_s < 1.15 * rate, result.raw
    # Two requests per part (the blocking reload and the part), all answered.
    assert result.requests >= 2 * result.parts
    assert result.requests_per_s == pytest.approx(2 * rate * CLIENTS, rel=0.2)
    assert result.bytes > 100 * result.parts  # AAC parts, not empty answers
    # The blocking reload waits for the next part: about one part's time, not more.
    assert result.playlist_latency.count >= result.parts
    assert 0 < result.playlist_latency.p50 < 2000 * result.part_target
    assert result.cycle_latency.max < 1000 * result.stall_bound_s
    assert result.cpu_user_s + result.cpu_system_s < 1.0


def test_refusals_count_by_status(live: tuple[RunningServer, str]) -> None:
    """A playlist that does not exist: every request answers 404, counted, retried, no parts."""
    server, _ = live
    port = int(server.http_url.rsplit(":", 1)[1])
    result = run("127.0.0.1", port, "/webcast/999/live/index.m3u8", 2, 1.0)
    assert result.parts == 0 and result.clients_without_parts == 2
    assert set(result.errors) == {"404"}
    # Retried after a delay (0.2 s), not in a tight loop.
    assert 4 <= result.errors["404"] <= 2 * 1.0 / 0.2 + 4
