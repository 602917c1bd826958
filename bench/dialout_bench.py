#!/usr/bin/env python3
"""Outbound call set-up through Kamailio: the bridge's INVITE to the callee's 200 OK.

Everything real, on loopback: ``callbridge serve --trunks`` (pinned to
``--server-core``), Kamailio as the carrier (SHA-256 digest: each call is
challenged with 407 and sent again with credentials, then relayed,
record-routed) and a sipp UAS as the callee, which answers at once, presses
1 and hangs up (Kamailio and sipp pinned to ``--client-core``). The figure is
the bridge's own (``dial_setup_ms`` in ``/api/bridge/stats``): from the first
INVITE of the answered attempt to its 200 OK, so the challenge's round trip
is in it. Calls are placed one at a time, ``--gap`` apart. ``--tls``: the
trunk is SIP over TLS (Kamailio's tls module, its certificate pinned); the
connection is made for the first call (its handshake in that call's figure,
also shown alone) and kept for the rest.

    .venv/bin/python bench/dialout_bench.py --calls 50 [--tls]
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
    parser.add_argument("--tls", action="store_true", help="SIP over TLS to the carrier")
    args = parser.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None or shutil.which("kamailio") is None:
        print("needs sipp and kamailio (scripts/install-system)")
        return 1
    client = ("taskset", "-c", args.client_core)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        carrier_port, callee_port, tls_port = free_port(), free_port(), free_port()
        trunks = tmp / "trunks.toml"
        trunk_port = tls_port if args.tls else carrier_port
        tls: tuple[Path, Path] | None = None
        tls_lines = ""
        if args.tls:
            tls = (tmp / "carrier.pem", tmp / "carrier.key")
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=carrier",
                 "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tls[1]),
                 "-out", str(tls[0])],
                check=True, capture_output=True,
            )  # fmt: skip
            tls_lines = f'transport = "tls"\ntls_ca = "{tls[0]}"\n'
        trunks.write_text(
            f'[dial]\ncountries = [1]\n\n[[trunk]]\nname = "carrier"\nhost = "127.0.0.1"\n'
            f'port = {trunk_port}\nusername = "bridge"\npassword = "{PASSWORD}"\n{tls_lines}'
        )
        trunks.chmod(0o600)
        pcap = tmp / "press_one.pcap"
        write_pcap(pcap, passcode_stream(["1"], lead_in=0.2))
        scenario = tmp / "callee.xml"
        scenario.write_text(
            SCENARIO.read_text().replace("{pcap}", str(pcap)).replace("{stay_ms}", "500")
        )
        with (
            carrier(
                tmp / "carrier",
                carrier_port,
                callee_port,
                {"bridge": PASSWORD},
                tls=tls,
                tls_port=tls_port,
            ),  # fmt: skip
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
                first: float | None = None
                for n in range(args.calls):
                    answer = server.api(
                        "POST", f"/api/events/{event.id}/dial", json={"number": "+19135550100"}
                    )
                    answer.raise_for_status()
                    server.wait_for(
                        lambda n=n: server.stats()["dial_out"].get("answered", 0) > n, timeout=20
                    )
                    if first is None:
                        first = server.stats()["dial_setup_ms"]["max"]
                    time.sleep(args.gap)
                stats = server.stats()
            finally:
                callee.wait(timeout=60)
                stop_tree(callee)
    setup = stats["dial_setup_ms"]
    counts = stats["dial_out"]
    over = "SIP over TLS" if args.tls else "UDP"
    print(f"outbound call set-up through Kamailio ({over}; SHA-256 digest, 407 then INVITE again):")
    what = "a TLS handshake in it" if args.tls else "no connection to make"
    print(f"  the first call ({what}): {first:.1f} ms")
    print(f"  calls answered {counts.get('answered', 0)} of {args.calls}, "
          f"failed {counts.get('failed', 0)}")  # fmt: skip
    print(f"  INVITE -> 200 OK: p50 {setup['p50']:.1f} ms, p99 {setup['p99']:.1f} ms, "
          f"max {setup['max']:.1f} ms (n={setup['count']})")  # fmt: skip
    tail = " --tls" if args.tls else ""
    print(f"  reproduce: .venv/bin/python bench/dialout_bench.py --calls {args.calls}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
