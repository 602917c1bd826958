"""Thousands of LL-HLS listeners from one core: build and run bench/llhls_load.c.

A Python listener costs about 0.1 ms of CPU per request and an LL-HLS
listener makes about nine requests a second (a blocking playlist reload and
a part, 4.7 times a second), so asyncio tops out at a few hundred listeners
per core. The C generator (epoll, one keep-alive connection per listener)
spends a few microseconds per request.

    from bench.llhls import run
    result = run("127.0.0.1", 8000, "/webcast/1/live/index.m3u8", clients=2000,
                 seconds=30, ramp_s=10, core=1)
    print(result.parts_per_client_per_s, result.stalled_clients)

or from a shell (prints the generator's JSON):

    .venv/bin/python bench/llhls.py 127.0.0.1 8000 /webcast/1/live/index.m3u8 2000 30 --ramp 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().with_name("llhls_load.c")


def cache_dir() -> Path:
    """Where built binaries are kept: $XDG_CACHE_HOME/callbridge (~/.cache/callbridge),
    or the temporary folder where that cannot be written."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "callbridge"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.gettempdir()) / "callbridge-build"
    return base


def build(source: Path = SOURCE, into: Path | None = None) -> Path:
    """The generator's binary, compiled with ``gcc -O2`` unless an up-to-date one exists.

    The binary's name carries a hash of the source, so that worktrees with
    different versions of it do not share one; it is rebuilt when missing or
    older than the source. Returns its path.
    """
    folder = into or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    binary = folder / f"llhls_load-{digest}"
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    # Built beside and renamed, so that a concurrent build never runs a half-written file.
    partial = folder / f".{binary.name}.{os.getpid()}"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(partial), str(source), "-lm"],
        check=True,
        capture_output=True,
    )
    partial.replace(binary)
    return binary


@dataclass(frozen=True)
class Latency:
    """Milliseconds: median, 99th percentile, worst (from a ~3 % histogram)."""

    count: int
    p50: float
    p99: float
    max: float


@dataclass(frozen=True)
class LoadResult:
    """What the generator printed; rates are over the window after the ramp.

    ``client_parts_per_s_min``/``_max``: each client's own rate from its
    first part to its last. A client that falls behind fetches the parts a
    blocking reload lists after the one it asked for before it blocks again
    (``parts_late``); ``parts_skipped`` counts parts it never fetched.
    """

    clients: int
    started: int
    connected: int
    clients_without_parts: int
    seconds: float
    ramp_s: float
    requests: int
    requests_per_s: float
    parts: int
    bytes: int
    parts_per_client_per_s: float
    stream_parts_per_s: float
    part_target: float
    client_parts_per_s_min: float
    client_parts_per_s_max: float
    parts_skipped: int
    parts_late: int
    errors: dict[str, int]
    error_total: int
    reconnects: int
    stalled_clients: int
    stall_events: int
    max_behind_s: float
    stall_bound_s: float
    part_latency: Latency
    playlist_latency: Latency
    cycle_latency: Latency
    cpu_user_s: float
    cpu_system_s: float
    cpu_window_s: float
    cpu_us_per_request: float
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadResult:
        """Reads the generator's JSON object (see bench/llhls_load.c)."""
        latency = data["latency_ms"]
        return cls(
            clients=int(data["clients"]),
            started=int(data["started"]),
            connected=int(data["connected"]),
            clients_without_parts=int(data["clients_without_parts"]),
            seconds=float(data["seconds"]),
            ramp_s=float(data["ramp_s"]),
            requests=int(data["requests"]),
            requests_per_s=float(data["requests_per_s"]),
            parts=int(data["parts"]),
            bytes=int(data["bytes"]),
            parts_per_client_per_s=float(data["parts_per_client_per_s"]),
            stream_parts_per_s=float(data["stream_parts_per_s"]),
            part_target=float(data["part_target"]),
            client_parts_per_s_min=float(data["client_parts_per_s"]["min"]),
            client_parts_per_s_max=float(data["client_parts_per_s"]["max"]),
            parts_skipped=int(data["parts_skipped"]),
            parts_late=int(data["parts_late"]),
            errors={str(k): int(v) for k, v in data["errors"].items()},
            error_total=int(data["error_total"]),
            reconnects=int(data["reconnects"]),
            stalled_clients=int(data["stalled_clients"]),
            stall_events=int(data["stall_events"]),
            max_behind_s=float(data["max_behind_s"]),
            stall_bound_s=float(data["stall_bound_s"]),
            part_latency=Latency(**latency["part"]),
            playlist_latency=Latency(**latency["playlist"]),
            cycle_latency=Latency(**latency["cycle"]),
            cpu_user_s=float(data["cpu_s"]["user"]),
            cpu_system_s=float(data["cpu_s"]["system"]),
            cpu_window_s=float(data["cpu_window_s"]),
            cpu_us_per_request=float(data["cpu_us_per_request"]),
            raw=data,
        )


def command(
    host: str,
    port: int,
    path: str,
    clients: int,
    seconds: float,
    cookie: str | None = None,
    ramp_s: float = 0.0,
    core: int | None = None,
    host_header: str | None = None,
    binary: Path | None = None,
) -> list[str]:
    """The generator's command line (under ``taskset -c core`` when ``core`` is given)."""
    argv = [str(binary or build()), host, str(port), path, str(clients), str(seconds)]
    argv += ["--ramp", str(ramp_s)]
    if cookie is not None:
        argv += ["--cookie", cookie]
    if host_header is not None:
        argv += ["--host-header", host_header]
    return (["taskset", "-c", str(core)] if core is not None else []) + argv


def run(
    host: str,
    port: int,
    path: str,
    clients: int,
    seconds: float,
    cookie: str | None = None,
    ramp_s: float = 0.0,
    core: int | None = None,
    host_header: str | None = None,
) -> LoadResult:
    """``clients`` listeners of the live playlist at ``path``: started over ``ramp_s``
    seconds, then measured together for ``seconds``. Blocks for ``ramp_s + seconds``.

    ``cookie`` is sent as the Cookie header (a registration), ``core`` pins the
    generator to one CPU. ``host`` may be ``unix:/path`` for a cache that
    listens on a Unix socket (``port`` is then unused; give ``host_header``).
    Raises ``subprocess.CalledProcessError`` if the generator fails (bad
    arguments, file descriptor limit).
    """
    argv = command(host, port, path, clients, seconds, cookie, ramp_s, core, host_header)
    done = subprocess.run(
        argv, check=True, capture_output=True, text=True, timeout=ramp_s + seconds + 60
    )
    return LoadResult.from_json(json.loads(done.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("path", help="the live playlist, e.g. /webcast/1/live/index.m3u8")
    parser.add_argument("clients", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--ramp", type=float, default=0.0)
    parser.add_argument("--cookie")
    parser.add_argument("--host-header")
    parser.add_argument("--core", type=int)
    args = parser.parse_args()
    argv = command(
        args.host, args.port, args.path, args.clients, args.seconds, args.cookie, args.ramp,
        args.core, args.host_header,
    )  # fmt: skip
    return subprocess.run(argv, stdout=sys.stdout).returncode


if __name__ == "__main__":
    raise SystemExit(main())
