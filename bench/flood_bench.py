"""What a stranger's flood does to a live call's audio: web logins, SIP from a non-trunk host.

One `callbridge serve` holds a live call with one listener (sipp for SIP, a
socket of the bench's own for RTP that times every frame). While a flood
runs — ``--flood login``: 120 strangers guessing the operator's password
(GET /login, POST /login) for 10 s; ``--flood sip``: INVITEs from 127.0.0.2
over UDP and TCP for 10 s, the trunk being 127.0.0.1; ``--flood webcast``:
``--concurrency`` LL-HLS listeners (webcast_bench's) arriving at once — it prints the
listener's frames and longest gap, the media clock's lateness (p50/p99/max
over its last 60 s) and ticks skipped, and the server's peak memory.

The server runs on core 0 (``taskset``), the flood and the listener on core 1.
``--source DIR`` runs another checkout's code (e.g. an older commit in a git
worktree) for a before/after comparison.

Reproduce:
    .venv/bin/python bench/flood_bench.py --flood login
    .venv/bin/python bench/flood_bench.py --flood sip
    .venv/bin/python bench/flood_bench.py --flood webcast --concurrency 250
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import rss_kib  # noqa: E402
from tests.support.flood import in_another_process, listen_through, login_flood, sip_flood  # noqa: E402
from tests.telephony.conftest import start_server  # noqa: E402
from webcast_bench import crowd  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", choices=("login", "sip", "webcast"), default="login")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=120)
    parser.add_argument("--source", type=Path, help="a checkout whose src/ the server runs")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    env = {"PYTHONPATH": str(args.source.resolve() / "src")} if args.source else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_server(
            Path(tmp), "--trunk", "127.0.0.1/32", prefix=("taskset", "-c", "0"), env=env
        ) as server,
    ):
        peak = [rss_kib(server.process.pid)]
        stop = threading.Event()

        def watch_memory() -> None:
            while not stop.wait(0.2):
                peak[0] = max(peak[0], rss_kib(server.process.pid))

        watcher = threading.Thread(target=watch_memory, daemon=True)
        watcher.start()
        before = peak[0]
        if args.flood == "login":
            heard = listen_through(
                server,
                Path(tmp),
                lambda _: in_another_process(
                    login_flood, server.http_url, args.concurrency, args.seconds
                ),
            )
        elif args.flood == "sip":
            heard = listen_through(
                server,
                Path(tmp),
                lambda _: in_another_process(sip_flood, server.sip_port, "127.0.0.2", args.seconds),
            )
        else:
            port = int(server.http_url.rsplit(":", 1)[1])
            heard = listen_through(
                server,
                Path(tmp),
                lambda event_id: in_another_process(
                    crowd, port, event_id, args.concurrency, args.seconds
                ),
                registration="off",
            )
        stop.set()
        watcher.join()
        where = f"source {args.source}" if args.source else "this tree"
        print(f"flood {args.flood} ({where})")
        print(f"  {heard}")
        print(
            f"  server memory (all its processes): {before / 1024:.0f} MiB before, "
            f"peak {peak[0] / 1024:.0f} MiB"
        )
        print(
            f"reproduce: .venv/bin/python bench/flood_bench.py --flood {args.flood} "
            f"--seconds {args.seconds:g} --concurrency {args.concurrency}"
            + (f" --source {args.source}" if args.source else "")
        )


if __name__ == "__main__":
    main()
