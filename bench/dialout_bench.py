#!/usr/bin/env python3
"""Outbound call set-up through Kamailio: the bridge's INVITE to the callee's 200 OK.

Everything real, on loopback: ``callbridge serve --trunks`` (pinned to
``--server-core``), Kamailio as the carrier (SHA-256 digest: each call is
challenged with 407 and sent again with credentials, then relayed,
record-routed) and a sipp UAS as the callee, which answers at once, presses
1 and hangs up (Kamailio and sipp pinned to ``--client-core``). The figure is
the bridge's own (``dial_setup_ms`` in ``/api/bridge/stats``): from the first
INVITE of the answered attempt to its 200 OK, so the challenge's round trip
is in it. Calls are placed one at a time, ``--gap`` apart.

    .venv/bin/python bench/dialout_bench.py --calls 50
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.support.carrier import carrier  # noqa: E402
from tests.support.pcap import passcode_stream, write_pcap  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.procs import stop_tree  # noqa: E402
from tests.telephony.conftest import start_server  # noqa: E402

SCENARIO = ROOT / "tests" / "telephony" / "scenarios" / "callee.xml"
PASSWORD = "bench-Passw0rd"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between dials")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--client-core", default="1")
    args = parser.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None or shutil.which("kamailio") is None:
        print("needs sipp and kamailio (scripts/install-system)")
        return 1
    client = ("taskset", "-c", args.client_core)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        carrier_port, callee_port = free_port(), free_port()
        trunks = tmp / "trunks.toml"
        trunks.write_text(
            f'[dial]\ncountries = [1]\n\n[[trunk]]\nname = "carrier"\nhost = "127.0.0.1"\n'
            f'port = {carrier_port}\nusername = "bridge"\npassword = "{PASSWORD}"\n'
        )
        trunks.chmod(0o600)
        pcap = tmp / "press_one.pcap"
        write_pcap(pcap, passcode_stream(["1"], lead_in=0.2))
        scenario = tmp / "callee.xml"
        scenario.write_text(
            SCENARIO.read_text().replace("{pcap}", str(pcap)).replace("{stay_ms}", "500")
        )
        with (
            carrier(tmp / "carrier", carrier_port, callee_port, {"bridge": PASSWORD}),
            start_server(
                tmp / "server", "--trunks", str(trunks), prefix=("taskset", "-c", args.server_core)
            ) as server,
        ):
            callee = subprocess.Popen(
                [*client, sipp, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(callee_port),
                 "-mp", str(free_port()), "-m", str(args.calls), "-nostdin", "-timeout", "600s"],
                stdout=(tmp / "callee.log").open("wb"), stderr=subprocess.STDOUT, cwd=tmp,
            )  # fmt: skip
            try:
                event = server.create_event()
                for n in range(args.calls):
                    answer = server.api(
                        "POST", f"/api/events/{event.id}/dial", json={"number": "+19135550100"}
                    )
                    answer.raise_for_status()
                    server.wait_for(
                        lambda n=n: server.stats()["dial_out"].get("answered", 0) > n, timeout=20
                    )
                    time.sleep(args.gap)
                stats = server.stats()
            finally:
                callee.wait(timeout=60)
                stop_tree(callee)
    setup = stats["dial_setup_ms"]
    counts = stats["dial_out"]
    print("outbound call set-up through Kamailio (SHA-256 digest, 407 then INVITE again):")
    print(f"  calls answered {counts.get('answered', 0)} of {args.calls}, "
          f"failed {counts.get('failed', 0)}")  # fmt: skip
    print(f"  INVITE -> 200 OK: p50 {setup['p50']:.1f} ms, p99 {setup['p99']:.1f} ms, "
          f"max {setup['max']:.1f} ms (n={setup['count']})")  # fmt: skip
    print(f"  reproduce: .venv/bin/python bench/dialout_bench.py --calls {args.calls}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
