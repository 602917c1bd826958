#!/usr/bin/env python3
"""TLS handshakes a second on the SIP TLS port: each a new connection, an OPTIONS, its 200.

The server (the real ``SipTcpServer`` with TLS and a ``SipEndpoint``) runs in
a child process pinned to one core; the clients run in this one, pinned to
another, ``--concurrency`` connections at a time. On a small machine the
clients are the limit: the figure to read is handshakes per second of the
server's CPU. A certificate is made with
openssl for each key type (ECDSA P-256, the usual for SIP trunks today, and
RSA 2048).

    .venv/bin/python bench/sip_tls_bench.py --seconds 5 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sip.uac import Uac

from callbridge.bridge.sip_transport import EndpointDriver, SipTcpServer, server_context
from callbridge.sip.endpoint import EndpointConfig, SipEndpoint

KEYS = {
    "ecdsa-p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa-2048": ["-newkey", "rsa:2048"],
}


def certificate(folder: Path, kind: str) -> tuple[Path, Path]:
    key, cert = folder / f"{kind}.key", folder / f"{kind}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", *KEYS[kind], "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def serve(cert: Path, key: Path, ready: multiprocessing.Queue, core: int) -> None:  # type: ignore[type-arg]
    os.sched_setaffinity(0, {core})

    async def run() -> None:
        loop = asyncio.get_running_loop()
        config = EndpointConfig(transport="TLS", max_calls=10)
        driver = EndpointDriver(SipEndpoint(config), lambda e, v: None, loop)
        tls = SipTcpServer(driver, tls=server_context(str(cert), str(key)))
        server = await tls.listen("127.0.0.1", 0)
        ready.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(run())


async def hammer(port: int, cert: Path, seconds: float, concurrency: int) -> tuple[int, int]:
    context = ssl.create_default_context(cafile=str(cert))
    done = failed = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
                # A new transaction each time (the same branch would be a retransmission).
                writer.write(Uac().options().replace(b"SIP/2.0/UDP", b"SIP/2.0/TLS"))
                answer = await asyncio.wait_for(reader.read(65536), 5)
                writer.close()
                if answer.startswith(b"SIP/2.0 200"):
                    done += 1
                else:
                    failed += 1
            except (OSError, TimeoutError) as error:
                failed += 1
                if failed == 1:
                    print(f"  first failure: {error!r}")

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done, failed


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    server_core, client_core = cores[0], cores[-1]
    with tempfile.TemporaryDirectory() as folder:
        for kind in KEYS:
            cert, key = certificate(Path(folder), kind)
            ready: multiprocessing.Queue[int] = multiprocessing.Queue()
            child = multiprocessing.Process(target=serve, args=(cert, key, ready, server_core))
            child.start()
            try:
                port = ready.get(timeout=30)
                os.sched_setaffinity(0, {client_core})
                assert child.pid is not None
                busy = cpu_seconds(child.pid)
                start = time.perf_counter()
                done, failed = asyncio.run(hammer(port, cert, args.seconds, args.concurrency))
                spent = time.perf_counter() - start
                busy = cpu_seconds(child.pid) - busy
            finally:
                child.terminate()
                child.join()
                os.sched_setaffinity(0, set(cores))
            print(
                f"{kind:11s} {done / spent:6.0f} handshakes + OPTIONS/s, "
                f"{done / busy:6.0f} per second of the server's CPU "
                f"({done} in {spent:.1f} s, server busy {100 * busy / spent:.0f} %, "
                f"{failed} failed)"
            )


if __name__ == "__main__":
    main()
