#!/usr/bin/env python3
"""Cache tier benchmark: LL-HLS listeners through Varnish; the origin's CPU whatever their number.

`callbridge serve --cache` runs pinned to one core (the origin's media and web
processes and Varnish share it), the load generator (bench/llhls_load.c, one
keep-alive connection per listener, epoll) to the other. A live call is
started; each step holds N listeners doing what hls.js does in low-latency
mode (blocking playlist reload, then the part) through the cache, and
measures the origin's CPU (media + web processes), Varnish's CPU, requests,
parts per listener against the stream's rate, stalls and latencies. A last
step sends listeners straight to the origin (today's path without the tier)
for the side-by-side ratio.

    .venv/bin/python bench/cache_bench.py                              # 500 2000 5000, direct 500
    .venv/bin/python bench/cache_bench.py --listeners 500 2000 5000 --direct 200 --seconds 30

Prints one line per step and a JSON summary; the machine is shared and noisy,
so read ratios and percentiles, and run it twice.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from figures import cpu_seconds, process_tree  # noqa: E402
from llhls import LoadResult, build, command  # noqa: E402
from tests.telephony.conftest import free_port, start_server  # noqa: E402

PID_LINE = re.compile(r"the (\w+) process is pid (\d+)")


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_by_part(server_pid: int, log: Path) -> dict[str, float]:
    """CPU seconds so far of the origin's web and media processes, and of the cache node's."""
    named = {int(pid): name for name, pid in PID_LINE.findall(log.read_text(errors="replace"))}
    totals = {"web": 0.0, "media": 0.0, "cache": 0.0, "supervisor": 0.0}
    for pid in process_tree(server_pid):
        name = named.get(pid)
        if name is None:  # a grandchild: Varnish's or hitch's processes, or a worker
            name = "cache" if _name(pid).startswith(("varnish", "cache-", "hitch")) else "media"
        totals[name if pid != server_pid else "supervisor"] += sum(cpu_seconds(pid, children=False))
    return totals


def step(
    server_pid: int,
    log: Path,
    port: int,
    path: str,
    listeners: int,
    seconds: float,
    ramp: float,
    core: int,
) -> dict[str, object]:
    argv = command("127.0.0.1", port, path, listeners, seconds, ramp_s=ramp, core=core)
    generator = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(ramp)  # the generator measures only after its ramp: so do we
    before, wall = cpu_by_part(server_pid, log), time.monotonic()
    time.sleep(seconds)
    after, elapsed = cpu_by_part(server_pid, log), time.monotonic() - wall
    out, _ = generator.communicate(timeout=120)
    result = LoadResult.from_json(json.loads(out))
    return {
        "listeners": listeners,
        "requests_per_s": round(result.requests_per_s),
        **{
            f"{part}_cpu_pct": round(100 * (after[part] - before[part]) / elapsed, 1)
            for part in after
        },
        "origin_cpu_pct": round(
            100 * sum(after[p] - before[p] for p in ("web", "media", "supervisor")) / elapsed, 1
        ),
        "parts_per_listener_per_s": round(result.parts_per_client_per_s, 3),
        "stream_parts_per_s": round(result.stream_parts_per_s, 3),
        "slowest_listener_parts_per_s": round(result.client_parts_per_s_min, 3),
        "connected": result.connected,
        "listeners_without_parts": result.clients_without_parts,
        "stalled_listeners": result.stalled_clients,
        "errors": result.error_total,
        "part_ms_p50": round(result.part_latency.p50, 1),
        "part_ms_p99": round(result.part_latency.p99, 1),
        "playlist_ms_p50": round(result.playlist_latency.p50, 1),
        "playlist_ms_p99": round(result.playlist_latency.p99, 1),
        "generator_us_per_request": round(result.cpu_us_per_request, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, nargs="+", default=[500, 2000, 5000])
    parser.add_argument("--direct", type=int, nargs="*", default=[500])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=10.0)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    build()

    tmp = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    origin_port = free_port()
    with start_server(
        tmp,
        *("--cache", "--origin-port", str(origin_port), "--cache-memory", "128"),
        prefix=("taskset", "-c", str(args.server_core)),
    ) as server:
        event = server.create_event(
            timedelta(minutes=-1),
            title="Cache benchmark",
            period="the quarter",
            registration="off",
        )
        url, cache_port = server.http_url, server.http_port
        path = f"/webcast/{event.id}/live/index.m3u8"
        server.api("POST", f"/api/events/{event.id}/start")
        for _ in range(100):
            if httpx.get(url + path, timeout=5).status_code == 200:
                break
            time.sleep(0.2)
        print(
            f"server (origin + Varnish) on core {args.server_core}, generator on core "
            f"{args.client_core}; {args.ramp:.0f} s ramp, {args.seconds:.0f} s measured per step\n"
        )
        rows = []
        plan = [("cache", cache_port, n) for n in args.listeners]
        plan += [("direct", origin_port, n) for n in args.direct]
        for how, port, count in plan:
            row = {"path": how} | step(
                server.process.pid,
                server.log_path,
                port,
                path,
                count,
                args.seconds,
                args.ramp,
                args.client_core,
            )
            rows.append(row)
            print(
                f"{how:6s} {count:5d} listeners: {row['requests_per_s']:6d} req/s, "
                f"origin CPU {row['origin_cpu_pct']:5.1f}% (web {row['web_cpu_pct']:4.1f}, media "
                f"{row['media_cpu_pct']:4.1f}), Varnish {row['cache_cpu_pct']:5.1f}%, "
                f"parts/s {row['parts_per_listener_per_s']}/{row['stream_parts_per_s']} "
                f"(slowest {row['slowest_listener_parts_per_s']}), stalled "
                f"{row['stalled_listeners']}, errors {row['errors']}, part p50/p99 "
                f"{row['part_ms_p50']}/{row['part_ms_p99']} ms, playlist p50/p99 "
                f"{row['playlist_ms_p50']}/{row['playlist_ms_p99']} ms"
            )
            time.sleep(3)  # let connections close between steps
        by_count = {r["listeners"]: r for r in rows if r["path"] == "cache"}
        for row in rows:
            cached = by_count.get(row["listeners"])
            if row["path"] == "direct" and cached is not None and row["origin_cpu_pct"]:
                ratio = float(cached["origin_cpu_pct"]) / float(row["origin_cpu_pct"])  # type: ignore[arg-type]
                print(f"\n{row['listeners']} listeners: origin CPU cached/straight {ratio:.3f}")
        print("\n" + json.dumps(rows))
        print(
            "\nreproduce: .venv/bin/python bench/cache_bench.py --listeners "
            + " ".join(str(n) for n in args.listeners)
            + " --direct "
            + " ".join(str(n) for n in args.direct)
            + f" --seconds {args.seconds:.0f} --ramp {args.ramp:.0f}"
        )
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
