#!/usr/bin/env python3
"""Dial-in benchmark: call set-up rate, join latency, and many legs held at once.

The server (`callbridge serve`) runs pinned to one core and sipp, the load
generator, to the other (taskset), since the machine is shared and noisy.
Every caller is a real SIP call from sipp: INVITE, ACK, the listener
passcode as RFC 4733 events, then PCMU silence for as long as it holds (as
a phone does), then BYE.

    .venv/bin/python bench/dialin_bench.py                      # quick: 100 legs, 60 s
    .venv/bin/python bench/dialin_bench.py --legs 500 --hold 300  # the issue's figure

It prints its figures and the command that reproduces them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import Arrival, cpu_seconds, percentiles, stream_figures  # noqa: E402
from tests.support.pcap import passcode_stream, write_pcap  # noqa: E402
from tests.support.sipp import SCENARIOS  # noqa: E402
from tests.telephony.conftest import DID, free_port  # noqa: E402

from callbridge.events.schema import EventFile  # noqa: E402
from callbridge.store.db import Database  # noqa: E402
from callbridge.store.events import EventStore  # noqa: E402
from callbridge.store.users import UserStore  # noqa: E402

SERVER_CORE, LOAD_CORE = "0", "1"


def sipp(
    scenario: Path, target: str, work: Path, calls: int, rate: float, limit: int, timeout: float
) -> tuple[int, str]:
    command = [
        "taskset",
        "-c",
        LOAD_CORE,
        "sipp",
        target,
        "-sf",
        str(scenario),
        "-i",
        "127.0.0.1",
        "-p",
        "0",
        "-mp",
        "0",
        "-s",
        DID[1:],
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-l",
        str(limit),
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-trace_stat",
        "-stf",
        str(work / "stat.csv"),
        "-fd",
        "1",
        "-max_socket",
        "10000",
        "-trace_err",
        "-error_file",
        str(work / "errors.log"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 60, cwd=work)
    return done.returncode, done.stdout + done.stderr


RTP_LOW = 40000  # the server's --rtp-ports start
PROBES = 10  # listener legs whose streams are captured off the wire


def capture(pcap: Path, first_port: int) -> subprocess.Popen[bytes] | None:
    """tcpdump, on the load core, of what the server sends from ``PROBES`` leg ports."""
    if shutil.which("tcpdump") is None:
        return None
    last = first_port + 2 * (PROBES - 1)
    return subprocess.Popen(
        [
            *("taskset", "-c", LOAD_CORE, "tcpdump", "-i", "lo", "-n", "-s", "64", "-B", "8192"),
            *("-w", str(pcap), f"udp and src portrange {first_port}-{last}"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def listener_streams(pcap: Path) -> dict[int, list[Arrival]]:
    """(arrival seconds, RTP sequence number, RTP timestamp) per source port, from a pcap."""
    data = pcap.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    scale = 1e-9 if magic in (0xA1B23C4D, 0x4D3CB2A1) else 1e-6
    link = struct.unpack(endian + "I", data[20:24])[0]
    link_header = {1: 14, 113: 16, 0: 4}.get(link, 14)  # Ethernet, Linux cooked, BSD loopback
    streams: dict[int, list[Arrival]] = {}
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack(endian + "IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ip = frame[link_header:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        if len(udp) < 8 + 12:
            continue
        source_port = struct.unpack("!H", udp[:2])[0]
        sequence, timestamp = struct.unpack("!HI", udp[10:16])
        streams.setdefault(source_port, []).append(
            (seconds + fraction * scale, sequence, timestamp)
        )
    return streams


def jitter_report(streams: dict[int, list[Arrival]]) -> list[str]:
    """Interval jitter, RFC 3550 jitter and loss of the captured listener streams."""
    figures = stream_figures(streams.values())
    if not figures.streams:
        return ["  listener streams on the wire: none captured (tcpdump missing or no probe legs)"]
    return [
        f"  at {figures.streams} listeners, captured off the wire (tcpdump on lo): packet "
        f"interval deviation from 20 ms (ms) {percentiles(figures.deviations_ms)}",
        f"    RFC 3550 interarrival jitter per stream (ms): {percentiles(figures.jitter_ms)}; "
        f"packets lost {figures.lost} of {figures.expected} "
        f"({figures.lost / max(figures.expected, 1) * 100:.2f} %)",
    ]


def last_stat(work: Path) -> dict[str, str]:
    lines = (work / "stat.csv").read_text().strip().splitlines()
    header, last = lines[0].split(";"), lines[-1].split(";")
    return dict(zip(header, last, strict=False))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--legs", type=int, default=100, help="legs held at once")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds each held leg stays")
    parser.add_argument("--rate", type=float, default=25.0, help="calls per second offered")
    parser.add_argument("--setup-calls", type=int, default=200, help="calls in the set-up phase")
    parser.add_argument(
        "--sender",
        choices=["auto", "io_uring", "sendto"],
        default="auto",
        help="serve --media-sender: how listeners' frames are sent",
    )
    parser.add_argument(
        "--speakers", type=int, default=0, help="speakers talking (a tone) while the legs hold"
    )
    args = parser.parse_args()
    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (scripts/install-system test)")
            return 2

    work = Path(tempfile.mkdtemp(prefix="callbridge-bench-"))
    database = Database(f"sqlite:///{work / 'bench.sqlite3'}")
    database.upgrade()
    UserStore(database).add("bench", "bench password 1")
    token = UserStore(database).issue_token("bench")
    start = datetime.now(UTC) + timedelta(minutes=5)
    event = EventStore(database).create(
        EventFile.model_validate(
            {
                "company": {
                    "name": "Bench, Inc.",
                    "ticker": "BNCH",
                    "exchange": "Nasdaq",
                    "city": "BOSTON, Mass.",
                    "about": "A benchmark.",
                },
                "event": {
                    "title": "Benchmark",
                    "period": "a benchmark",
                    "starts_at": start.replace(tzinfo=None, microsecond=0),
                    "timezone": "UTC",
                    "replay_until": (start + timedelta(days=1)).date(),
                    "dial_in": [{"label": "Bench", "number": DID}],
                },
            }
        )
    )
    http_port, sip_port = free_port(), free_port()
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [
            "taskset",
            "-c",
            SERVER_CORE,
            sys.executable,
            "-m",
            "callbridge",
            "--db",
            database.url,
            "serve",
            "--no-live-captions",
            "--port",
            str(http_port),
            "--sip-port",
            str(sip_port),
            "--rtp-ports",
            f"{RTP_LOW}-59999",
            "--data-dir",
            str(work / "var"),
            "--media-timeout",
            "30",
            "--max-passcode-failures",
            "1000000",
            "--media-sender",
            args.sender,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{http_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    try:
        for _ in range(100):
            try:
                if api.get("/events").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        api.post(f"/api/events/{event.id}/start").raise_for_status()
        target = f"127.0.0.1:{sip_port}"
        scenario_text = (SCENARIOS / "dial_in.xml").read_text()

        # -- phase 1: set-up rate ------------------------------------------------
        short = work / "short.pcap"
        write_pcap(short, passcode_stream([event.passcode + "#"]))
        setup = work / "setup"
        setup.mkdir()
        (setup / "dial_in.xml").write_text(
            scenario_text.replace("{pcap}", str(short)).replace("{stay_ms}", "3000")
        )
        began = time.monotonic()
        rc, _ = sipp(
            setup / "dial_in.xml", target, setup, args.setup_calls, args.rate, args.setup_calls, 120
        )
        setup_wall = time.monotonic() - began
        stat = last_stat(setup)
        setup_ok = int(stat.get("SuccessfulCall(C)", 0))
        setup_failed = int(stat.get("FailedCall(C)", 0))
        stats = api.get("/api/bridge/stats").json()
        join = stats["join_latency_ms"]

        # -- phase 2: legs held at once -------------------------------------------
        hold_pcap = work / "hold.pcap"
        # Silence for the whole hold, as a phone keeps sending.
        from tests.support.pcap import Timed

        from callbridge.rtp.packet import RtpPacket

        stream = passcode_stream([event.passcode + "#"])
        last = stream[-1]
        seq, ts, t = last.packet.sequence_number + 1, last.packet.timestamp + 160, last.at + 0.02
        silence = b"\xff" * 160
        while t < args.hold + 3:
            stream.append(
                Timed(t, RtpPacket(0, seq & 0xFFFF, ts & 0xFFFFFFFF, last.packet.ssrc, silence))
            )
            seq, ts, t = seq + 1, ts + 160, t + 0.02
        write_pcap(hold_pcap, stream)
        held = work / "held"
        held.mkdir()
        (held / "dial_in.xml").write_text(
            scenario_text.replace("{pcap}", str(hold_pcap)).replace(
                "{stay_ms}", str(int(args.hold * 1000))
            )
        )
        samples: list[dict[str, Any]] = []
        cpu: list[float] = []
        kernel: list[float] = []
        result: dict[str, Any] = {}

        def load() -> None:
            result["rc"], result["out"] = sipp(
                held / "dial_in.xml",
                target,
                held,
                args.legs,
                min(args.rate, 50),
                args.legs,
                args.hold + 120,
            )

        speaking: dict[str, Any] = {}
        speakers_thread: threading.Thread | None = None
        if args.speakers:
            tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(160) / 8000)).astype(np.int16)
            talk = work / "talk.pcap"
            write_pcap(
                talk,
                passcode_stream([event.speaker_passcode], tone=tone, talk_after=args.hold + 3),
            )
            speakers_dir = work / "speakers"
            speakers_dir.mkdir()
            (speakers_dir / "dial_in.xml").write_text(
                scenario_text.replace("{pcap}", str(talk)).replace(
                    "{stay_ms}", str(int(args.hold * 1000))
                )
            )

            def speak() -> None:
                speaking["rc"], _ = sipp(
                    speakers_dir / "dial_in.xml",
                    target,
                    speakers_dir,
                    args.speakers,
                    5,
                    args.speakers,
                    args.hold + 120,
                )

            speakers_thread = threading.Thread(target=speak, daemon=True)
            speakers_thread.start()
        thread = threading.Thread(target=load)
        thread.start()
        ramp = args.legs / min(args.rate, 50) + 8
        time.sleep(ramp)
        # Ports go round robin from the bottom of the range: these belong to held legs.
        first_probe = RTP_LOW + 2 * (args.setup_calls + args.speakers + args.legs // 2)
        wire = work / "listeners.pcap"
        tcpdump = capture(wire, first_probe)
        steady_from = time.monotonic()
        previous, previous_at = cpu_seconds(server.pid), time.monotonic()
        while time.monotonic() - steady_from < args.hold - ramp - 5 and thread.is_alive():
            time.sleep(5)
            (user, system), at = cpu_seconds(server.pid), time.monotonic()
            span = at - previous_at
            cpu.append((user + system - sum(previous)) / span * 100)
            kernel.append((system - previous[1]) / span * 100)
            previous, previous_at = (user, system), at
            samples.append(api.get("/api/bridge/stats").json())
        if tcpdump is not None:
            tcpdump.terminate()
            tcpdump.wait(timeout=10)
        thread.join()
        held_stat = last_stat(held)
        held_ok = int(held_stat.get("SuccessfulCall(C)", 0))
        held_failed = int(held_stat.get("FailedCall(C)", 0))
        peak_legs = max((s["legs_in_conferences"] for s in samples), default=0)
        lateness = samples[-1]["tick_lateness_ms"] if samples else {}

        print("callbridge dial-in benchmark")
        print(
            f"  machine: {os.cpu_count()} cores; "
            f"server on core {SERVER_CORE}, sipp on core {LOAD_CORE}"
        )
        print(
            f"  set-up: {args.setup_calls} calls offered at {args.rate}/s: {setup_ok} completed, "
            f"{setup_failed} failed, {setup_ok / max(setup_wall - 3, 1):.1f} calls/s sustained "
            f"(sipp rc {rc})"
        )
        print(
            f"  last passcode key -> first frame of the call: p50 {join['p50']} ms, "
            f"p99 {join['p99']} ms, max {join['max']} ms over {join['count']} joins"
        )
        print(
            f"  held: {args.legs} legs for {args.hold:.0f} s each: {held_ok} completed, "
            f"{held_failed} failed, peak {peak_legs} legs in the conference at once "
            f"(sipp rc {result.get('rc')})"
        )
        if args.speakers:
            print(
                f"  with {args.speakers} speakers talking throughout (sipp rc {speaking.get('rc')})"
            )
        print(f"  server CPU while held (one core = 100 %): {percentiles(cpu)}")
        print(
            f"    of which in the kernel (system calls; on loopback a send also pays for "
            f"delivering to sipp's socket): {percentiles(kernel)}"
        )
        for line in (
            jitter_report(listener_streams(wire))
            if wire.exists()
            else ["  listener streams on the wire: not captured (no tcpdump)"]
        ):
            print(line)
        print(
            f"  conference tick lateness (ms): p50 {lateness.get('p50')}, "
            f"p99 {lateness.get('p99')}, max {lateness.get('max')}; "
            f"ticks skipped {samples[-1]['ticks_skipped'] if samples else 'n/a'}"
        )
        print(
            "  reproduce: .venv/bin/python bench/dialin_bench.py "
            f"--legs {args.legs} --hold {args.hold:.0f} --rate {args.rate} "
            f"--setup-calls {args.setup_calls} --speakers {args.speakers}"
            + (f" --sender {args.sender}" if args.sender != "auto" else "")
        )
        if rc != 0 or result.get("rc") != 0:
            print(f"  (sipp output kept in {work})")
            timeouts = (work / "server.log").read_text(errors="replace").count("no RTP for")
            print(f"  legs the server dropped for want of RTP: {timeouts}")
        return 0 if held_failed == 0 and setup_failed == 0 else 1
    finally:
        server.terminate()
        server.wait(timeout=20)
        api.close()
        database.dispose()


if __name__ == "__main__":
    sys.exit(main())
