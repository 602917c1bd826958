#!/usr/bin/env python3
"""The moderator console's delay: a caller's ``*1`` and ``*2`` to the queue row on the screen.

Everything real: ``callbridge serve`` on loopback (pinned to ``--server-core``),
a sipp caller (listen-only) pressing ``*1`` then ``*2`` over and over, and the
console open in headless Chromium (pinned with sipp and this script to
``--client-core``). The page records, with a MutationObserver, the wall-clock
moment each queue row appears and goes; the bridge's audit trail says when it
decided each key (``queue`` and ``withdraw`` rows, the same machine's clock).
The delay is the difference: the media plane's decision to the row drawn,
which is what the control channel and the console's stream add. (The keys'
own trip, RTP to the bridge, is the same either way.)

    .venv/bin/python bench/console_bench.py                      # this tree's callbridge
    .venv/bin/python bench/console_bench.py --src OTHER/src      # another tree's (e.g. before
                                                                 # the push: git worktree add)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.support.chromium import launch  # noqa: E402
from tests.support.pcap import passcode_stream  # noqa: E402
from tests.support.sipp import call_in  # noqa: E402
from tests.telephony.conftest import start_server  # noqa: E402

# Installed before the console's scripts run: every change to the queue's row count.
WATCH_QUEUE = """
window.__marks = [];
new MutationObserver(() => {
  const queue = document.getElementById("queue");
  if (!queue) return;
  const rows = queue.querySelectorAll("li").length;
  const last = window.__marks[window.__marks.length - 1];
  if (!last || last.rows !== rows) window.__marks.push({at: Date.now(), rows: rows});
}).observe(document, {subtree: true, childList: true});
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(tmp: Path, presses: int, gap: float, prefix: tuple[str, ...]) -> dict[str, Any]:
    with start_server(tmp, prefix=prefix) as server, launch() as browser:
        event = server.create_event()
        assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.add_init_script(WATCH_QUEUE)
        page.goto(f"{server.http_url}/login?next=/console/events/{event.id}")
        page.fill("input[name=name]", "operator")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/console/events/{event.id}")
        page.wait_for_selector("#call-state:text('live')")

        keys = [event.passcode + "#"] + ["*1", "*2"] * presses
        stay_ms = int((len(keys) * gap + 3) * 1000)
        result = call_in(
            server.sip_target,
            tmp,
            passcode_stream(keys, between_codes=gap),
            stay_ms=stay_ms,
            timeout=stay_ms / 1000 + 30,
        )
        assert result.ok, result.output[-2000:]
        page.wait_for_timeout(1000)
        marks: list[dict[str, int]] = page.evaluate("window.__marks")
        audit = server.api("GET", f"/api/events/{event.id}/audit").json()
    decided = [
        (datetime.fromisoformat(row["at"]).timestamp() * 1000, row["kind"])
        for row in audit
        if row["kind"] in ("queue", "withdraw")
    ]
    decided.sort()
    delays: list[float] = []
    for at, kind in decided:
        want = 1 if kind == "queue" else 0
        shown = next((m["at"] for m in marks if m["at"] >= at - 5 and m["rows"] == want), None)
        if shown is not None:
            delays.append(max(0.0, shown - at))
    return {
        "keys_decided": len(decided),
        "rows_seen": len(delays),
        "delay_ms": {
            "p50": round(statistics.median(delays), 1) if delays else None,
            "p90": round(percentile(delays, 0.9), 1) if delays else None,
            "max": round(max(delays), 1) if delays else None,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=10, help="*1 then *2, this many times")
    parser.add_argument("--gap", type=float, default=1.3, help="seconds between keys")
    parser.add_argument("--src", type=Path, help="the callbridge tree the server runs from")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    if args.src is not None:
        os.environ["PYTHONPATH"] = str(args.src.resolve())  # the server's `-m callbridge`
    os.sched_setaffinity(0, {args.client_core})  # Chromium and sipp inherit it
    prefix = ("taskset", "-c", str(args.server_core))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        figures = one_run(Path(tmp), args.presses, args.gap, prefix)
    figures["load"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    figures["server_src"] = str(args.src or ROOT / "src")
    print(json.dumps(figures, indent=2))
    delay = figures["delay_ms"]
    print(
        f"\n*1/*2 decided -> row on screen: p50 {delay['p50']} ms, p90 {delay['p90']} ms, "
        f"max {delay['max']} ms over {figures['rows_seen']} keys; reproduce: "
        f".venv/bin/python bench/console_bench.py --presses {args.presses} --gap {args.gap}"
        f"{' --src ' + str(args.src) if args.src else ''} --server-core {args.server_core} "
        f"--client-core {args.client_core}"
    )


if __name__ == "__main__":
    main()
