#!/usr/bin/env python3
"""Webcast benchmark: how many live LL-HLS listeners one `callbridge serve` process holds.

The server runs pinned to one core (taskset), this load generator to the
other. A live call is started (its webcast packages the mix, silence here:
the cost of serving does not depend on the sound), then N simulated
listeners each do what hls.js does in low-latency mode: a blocking playlist
reload for the part named in EXT-X-PRELOAD-HINT, then that part, again and
again. A listener *stalls* when it has received less media than wall time
has passed since it started, less the hold-back it started with.

    .venv/bin/python bench/webcast_bench.py                        # 25, 50, 100, 200 listeners
    .venv/bin/python bench/webcast_bench.py --listeners 100 400 --seconds 60

Prints, per step: requests per second served, server CPU (% of its core),
parts delivered per listener per second against the stream's own rate,
the p50/p99 time from a part's blocking request to its bytes, and stalls.
The client is raw asyncio HTTP/1.1 with keep-alive, so that the generator
is not the bottleneck before the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import cpu_seconds  # noqa: E402
from tests.telephony.conftest import start_server  # noqa: E402

HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s"')
PART_TARGET = re.compile(r"#EXT-X-PART-INF:PART-TARGET=([0-9.]+)")


class Connection:
    """One keep-alive HTTP/1.1 connection: GET and read the body (Content-Length)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nConnection: keep-alive\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Listener:
    def __init__(self, host: str, port: int, event_id: int, part_s: float) -> None:
        self.conn = Connection(host, port)
        self.base = f"/webcast/{event_id}/live/"
        self.part_s = part_s
        self.parts = 0
        self.waits: list[float] = []
        self.stalled_s = 0.0
        self.errors = 0

    async def run(self, until: float) -> None:
        _, text = await self.conn.get(self.base + "index.m3u8")
        match = HINT.search(text.decode())
        if match is None:
            self.errors += 1
            return
        msn, part = int(match.group(1)), int(match.group(2))
        started = time.monotonic()
        hold_back = 3 * self.part_s
        while time.monotonic() < until:
            asked = time.monotonic()
            status, text = await self.conn.get(
                f"{self.base}index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
            )
            if status != 200:
                self.errors += 1
                await asyncio.sleep(self.part_s)
                continue
            status, _ = await self.conn.get(f"{self.base}part{msn}.{part}.m4s")
            now = time.monotonic()
            self.waits.append(now - asked)
            if status != 200:
                self.errors += 1
            self.parts += 1
            behind = (now - started) - (self.parts * self.part_s + hold_back)
            self.stalled_s = max(self.stalled_s, behind)
            match = HINT.search(text.decode())
            if match is None:
                self.errors += 1
                break
            msn, part = int(match.group(1)), int(match.group(2))
        self.conn.close()


async def step(
    port: int, event_id: int, count: int, seconds: float, part_s: float
) -> dict[str, float]:
    listeners = [Listener("127.0.0.1", port, event_id, part_s) for _ in range(count)]
    until = time.monotonic() + seconds
    await asyncio.gather(*(listener.run(until) for listener in listeners))
    waits = np.array([w for listener in listeners for w in listener.waits]) * 1000
    parts = sum(listener.parts for listener in listeners)
    return {
        "listeners": count,
        "requests_per_s": 2 * parts / seconds,
        "parts_per_listener_per_s": parts / count / seconds,
        "stream_parts_per_s": 1 / part_s,
        "wait_ms_p50": float(np.percentile(waits, 50)) if len(waits) else float("nan"),
        "wait_ms_p99": float(np.percentile(waits, 99)) if len(waits) else float("nan"),
        "stalled_listeners": sum(1 for listener in listeners if listener.stalled_s > 0.5),
        "errors": sum(listener.errors for listener in listeners),
    }


def crowd(port: int, event_id: int, count: int, seconds: float) -> dict[str, float]:
    """``count`` LL-HLS listeners for ``seconds`` (run in a process of its own: flood_bench)."""
    return asyncio.run(step(port, event_id, count, seconds, part_s=0.213))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.client_core})

    tmp = Path(tempfile.mkdtemp(prefix="webcast-bench-"))
    with start_server(tmp, prefix=("taskset", "-c", str(args.server_core))) as server:
        event = server.create_event(
            timedelta(minutes=-1),
            title="Webcast benchmark",
            period="the quarter",
            registration="off",
        )
        url, http_port = server.http_url, server.http_port
        server.api("POST", f"/api/events/{event.id}/start")
        playlist = ""
        for _ in range(100):
            response = httpx.get(f"{url}/webcast/{event.id}/live/index.m3u8", timeout=5)
            if response.status_code == 200:
                playlist = response.text
                break
            time.sleep(0.2)
        match = PART_TARGET.search(playlist)
        if match is None:
            print("no live playlist:", server.log()[-2000:])
            return 1
        part_s = float(match.group(1))
        print(f"live playlist up; part target {part_s:.3f} s; server on core {args.server_core},")
        print(f"listeners simulated on core {args.client_core}; {args.seconds:.0f} s per step\n")
        rows = []
        for count in args.listeners:
            before, wall = sum(cpu_seconds(server.process.pid)), time.monotonic()
            row = asyncio.run(step(http_port, event.id, count, args.seconds, part_s))
            row["server_cpu_pct"] = (
                100 * (sum(cpu_seconds(server.process.pid)) - before) / (time.monotonic() - wall)
            )
            rows.append(row)
            print(
                f"{count:5d} listeners: {row['requests_per_s']:7.0f} req/s, "
                f"server CPU {row['server_cpu_pct']:5.1f}%, "
                f"{row['parts_per_listener_per_s']:.2f}/{row['stream_parts_per_s']:.2f} parts/s "
                f"per listener, part wait p50 {row['wait_ms_p50']:.0f} ms "
                f"p99 {row['wait_ms_p99']:.0f} ms, stalled {row['stalled_listeners']}, "
                f"errors {row['errors']}"
            )
        print(
            "\nreproduce: .venv/bin/python bench/webcast_bench.py --listeners "
            + " ".join(str(c) for c in args.listeners)
            + f" --seconds {args.seconds:.0f}"
        )
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
