#!/usr/bin/env python3
"""Why Varnish and not nginx: the same LL-HLS crowd through each, in front of one origin.

An LL-HLS listener's blocking playlist request (``_HLS_msn``/``_HLS_part``)
waits at the origin until the next part exists. Behind a cache, the crowd
asks for the same key at once; the cache must send one request to the origin
and release everyone the moment it answers. Varnish parks the others on the
object's waiting list and wakes them when the fetch completes. nginx's
``proxy_cache_lock`` makes them poll the cache every 500 ms
(ngx_http_file_cache.c), so a listener may wait up to half a second longer
for each part. This measures it: one `callbridge serve` origin with a live
call; Varnish (`callbridge cache`) and nginx (`proxy_cache` with
``proxy_cache_lock``, the same TTLs as the VCL), each in front of it on its
own port; the load generator (bench/llhls_load.c) runs N listeners through
one, then the other. Printed: part and playlist latency percentiles,
listeners that stalled, requests that reached the origin.

    .venv/bin/python bench/cache_choice_bench.py --listeners 200 --seconds 20

Needs nginx (Debian nginx or nginx-light) besides the cache set-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
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

from llhls import build, run  # noqa: E402
from tests.telephony.conftest import free_port, start_server  # noqa: E402

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    proxy_cache_path {tmp}/nginx-cache levels=1:2 keys_zone=hls:32m max_size=512m;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache hls;
            proxy_cache_key $uri$is_args$args;
            # The origin's Cache-Control is for browsers; the TTLs are the VCL's.
            proxy_ignore_headers Cache-Control Expires;
            proxy_cache_valid 200 2s;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 15s;
            proxy_cache_lock_age 15s;
            proxy_read_timeout 15s;
        }}
        location ~ \\.m4s$ {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache hls;
            proxy_cache_key $uri;
            proxy_ignore_headers Cache-Control Expires;
            proxy_cache_valid 200 300s;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 15s;
            proxy_cache_lock_age 15s;
            proxy_read_timeout 15s;
        }}
    }}
}}
"""


def wait_ok(url: str, tries: int = 300) -> None:
    for _ in range(tries):
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=5.0)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        print("nginx is not installed (apt-get install nginx-light)")
        return 1
    build()
    tmp = Path(tempfile.mkdtemp(prefix="cache-choice-"))
    tmp.chmod(0o755)
    varnish, nginx_port = free_port(), free_port()
    pin = ("taskset", "-c", str(args.server_core))
    processes: list[subprocess.Popen[bytes]] = []
    with start_server(tmp, prefix=pin) as server, contextlib.ExitStack() as stop:
        stop.callback(_stop_all, processes)
        event = server.create_event(timedelta(minutes=-1), title="Cache choice", registration="off")
        origin = server.http_port
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, origin=origin, port=nginx_port))
        processes += [
            subprocess.Popen(
                [*pin, sys.executable, "-m", "callbridge", "cache", "--origin",
                 f"127.0.0.1:{origin}", "--port", str(varnish)],
                stdout=(tmp / "varnish.log").open("wb"), stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [*pin, nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                stdout=(tmp / "nginx.log").open("wb"), stderr=subprocess.STDOUT,
            ),
        ]  # fmt: skip
        path = f"/webcast/{event.id}/live/index.m3u8"
        server.api("POST", f"/api/events/{event.id}/start")
        wait_ok(f"http://127.0.0.1:{origin}{path}")
        wait_ok(f"http://127.0.0.1:{varnish}{path}")
        wait_ok(f"http://127.0.0.1:{nginx_port}{path}")
        rows = []
        for name, port in (("varnish", varnish), ("nginx", nginx_port)):
            result = run(
                "127.0.0.1", port, path, args.listeners, args.seconds,
                ramp_s=args.ramp, core=args.client_core,
            )  # fmt: skip
            row = {
                "cache": name,
                "listeners": args.listeners,
                "part_ms_p50": result.part_latency.p50,
                "part_ms_p99": result.part_latency.p99,
                "playlist_ms_p50": result.playlist_latency.p50,
                "playlist_ms_p99": result.playlist_latency.p99,
                "cycle_ms_p99": result.cycle_latency.p99,
                "parts_per_listener_per_s": round(result.parts_per_client_per_s, 3),
                "stream_parts_per_s": round(result.stream_parts_per_s, 3),
                "stalled_listeners": result.stalled_clients,
                "errors": result.error_total,
            }
            rows.append(row)
            print(
                f"{name:8s} {args.listeners} listeners: playlist p50/p99 "
                f"{row['playlist_ms_p50']:.0f}/{row['playlist_ms_p99']:.0f} ms, part p50/p99 "
                f"{row['part_ms_p50']:.0f}/{row['part_ms_p99']:.0f} ms, parts/s "
                f"{row['parts_per_listener_per_s']}/{row['stream_parts_per_s']}, stalled "
                f"{row['stalled_listeners']}, errors {row['errors']}"
            )
            time.sleep(3)
        print("\n" + json.dumps(rows))
        print(
            f"\nreproduce: .venv/bin/python bench/cache_choice_bench.py --listeners "
            f"{args.listeners} --seconds {args.seconds:.0f}"
        )
        return 0


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    raise SystemExit(main())
