#!/usr/bin/env python3
"""Metrics benchmark: how long a /metrics scrape takes with 1,000 listeners on a call.

`callbridge serve --metrics-listen` runs pinned to one core and sipp to the
other (taskset), as in the dial-in benchmark: every listener is a real SIP
call from sipp that keys the listener passcode and sends PCMU silence while
it holds. Once every leg is on the call, /metrics is scraped again and
again (as Prometheus would, one at a time) and timed; the same is done on
the idle server first. A scrape reads the media plane's counters over the
control channel (``bridge.metrics``: one pass over the legs and callers on
the media loop) and renders them in the web process (``web.metrics``); the
media clock's lateness while it is scraped is printed beside it.

    .venv/bin/python bench/metrics_bench.py                   # 1,000 listeners
    .venv/bin/python bench/metrics_bench.py --listeners 200   # quicker

It prints its figures and the command that reproduces them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialin_bench import SERVER_CORE, last_stat, sipp  # noqa: E402
from figures import percentiles  # noqa: E402
from tests.support.pcap import Timed, passcode_stream, write_pcap  # noqa: E402
from tests.support.sipp import SCENARIOS  # noqa: E402
from tests.telephony.conftest import start_server  # noqa: E402

from callbridge.rtp.packet import RtpPacket  # noqa: E402


def hold_stream(passcode: str, seconds: float) -> list[Timed]:
    """The listener passcode, then PCMU silence for ``seconds`` (a phone keeps sending)."""
    stream = passcode_stream([passcode + "#"])
    last = stream[-1]
    seq, ts, t = last.packet.sequence_number + 1, last.packet.timestamp + 160, last.at + 0.02
    while t < seconds:
        stream.append(
            Timed(t, RtpPacket(0, seq & 0xFFFF, ts & 0xFFFFFFFF, last.packet.ssrc, b"\xff" * 160))
        )
        seq, ts, t = seq + 1, ts + 160, t + 0.02
    return stream


def scrape_times(url: str, count: int) -> tuple[list[float], list[float], str]:
    """``count`` scrapes one after another: each one's seconds, the media plane's part of
    each (``callbridge_media_metrics_read_seconds``), and the last body."""
    times, reads, body = [], [], ""
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            began = time.perf_counter()
            answer = client.get(url)
            times.append(time.perf_counter() - began)
            answer.raise_for_status()
            body = answer.text
            reads.append(sample(body, "callbridge_media_metrics_read_seconds"))
            time.sleep(0.05)
    return times, reads, body


def sample(body: str, series: str) -> float:
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def lateness_p99(before: str, after: str) -> float:
    """The conference clock's p99 lateness (ms) between two scrapes, from its buckets."""
    prefix = 'callbridge_tick_lateness_seconds_bucket{clock="conference",le="'
    counts: list[tuple[float, float]] = []
    for line in after.splitlines():
        if line.startswith(prefix):
            bound = line[len(prefix) :].split('"', 1)[0]
            series = line.rsplit(" ", 1)[0]
            counts.append((float(bound), sample(after, series) - sample(before, series)))
    total = counts[-1][1] if counts else 0.0
    for bound, count in counts:
        if total and count >= 0.99 * total:
            return bound * 1000
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--listeners", type=int, default=1000, help="listener legs held at once")
    parser.add_argument("--scrapes", type=int, default=50, help="scrapes timed in each phase")
    parser.add_argument("--rate", type=float, default=50.0, help="calls per second offered")
    args = parser.parse_args()
    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (scripts/install-system test)")
            return 2
    work = Path(tempfile.mkdtemp(prefix="callbridge-metrics-bench-"))
    ramp = args.listeners / args.rate
    hold = ramp + 30 + args.scrapes * 0.2
    with start_server(
        work,
        "--rtp-ports",
        "40000-59999",
        "--media-timeout",
        "30",
        "--max-passcode-failures",
        "1000000",
        prefix=("taskset", "-c", SERVER_CORE),
    ) as server:
        event = server.create_event()
        server.api("POST", f"/api/events/{event.id}/start").raise_for_status()
        metrics = server.metrics_url + "/metrics"
        idle, idle_reads, idle_body = scrape_times(metrics, args.scrapes)

        pcap = work / "hold.pcap"
        write_pcap(pcap, hold_stream(event.passcode, hold))
        held = work / "held"
        held.mkdir()
        scenario = (SCENARIOS / "dial_in.xml").read_text()
        (held / "dial_in.xml").write_text(
            scenario.replace("{pcap}", str(pcap)).replace("{stay_ms}", str(int(hold * 1000)))
        )
        result: dict[str, Any] = {}

        def load() -> None:
            result["rc"], result["out"] = sipp(
                held / "dial_in.xml",
                server.sip_target,
                held,
                args.listeners,
                args.rate,
                args.listeners,
                hold + 120,
            )

        caller = threading.Thread(target=load)
        caller.start()
        listeners = f'callbridge_listeners{{channel="phone",event="{event.id}"}}'
        deadline = time.monotonic() + ramp + 60
        body = ""
        while time.monotonic() < deadline:
            body = httpx.get(metrics, timeout=10).text
            if sample(body, listeners) >= args.listeners:
                break
            time.sleep(0.5)
        on_call = sample(body, listeners)
        before = body
        busy, busy_reads, busy_body = scrape_times(metrics, args.scrapes)
        late = lateness_p99(before, busy_body)
        caller.join()
        stat = last_stat(held)
    print(f"listeners on the call while scraped: {on_call:.0f} of {args.listeners}")
    print(
        f"/metrics scrape, idle server (ms):      {percentiles([t * 1000 for t in idle])}, "
        f"{len(idle_body)} bytes"
    )
    print(
        f"/metrics scrape, {on_call:.0f} listeners (ms): {percentiles([t * 1000 for t in busy])}, "
        f"{len(busy_body)} bytes"
    )
    print(
        f"the media plane's read of its counters (ms): idle "
        f"{percentiles([t * 1000 for t in idle_reads])}; with {on_call:.0f} listeners "
        f"{percentiles([t * 1000 for t in busy_reads])}"
    )
    print(f"media tick lateness p99 while scraped (bucket bound): {late:.1f} ms")
    print(
        f"sipp: {stat.get('SuccessfulCall(C)', '?')} calls ok, "
        f"{stat.get('FailedCall(C)', '?')} failed; rc {result.get('rc')}"
    )
    print(f"reproduce: .venv/bin/python bench/metrics_bench.py --listeners {args.listeners}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
