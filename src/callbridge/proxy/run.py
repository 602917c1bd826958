"""Run one SIP proxy: Kamailio as a child process, until a signal.

``callbridge proxy`` runs this on the proxy's host. Kamailio dies with the
process that started it and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import time
from typing import Any

from callbridge.proxy.kamailio import Proxy, check_command, kamailio_command, write_files

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


class ProxyUnavailable(RuntimeError):
    """Kamailio is missing or refuses the configuration; the message says what to do."""


def _child_setup() -> None:
    # Kamailio's control socket and pid file are read by others (kamcmd):
    # not callbridge's private umask (077).
    os.umask(0o022)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def kamailio_program() -> str:
    """Kamailio's path; raises ProxyUnavailable naming the package when it is absent."""
    path = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if path is None:
        raise ProxyUnavailable(
            "kamailio is not installed (Debian package kamailio: scripts/install-system proxy)"
        )
    return path


def check(proxy: Proxy, kamailio: str) -> None:
    """Have Kamailio parse the written configuration; raises ProxyUnavailable with its complaint."""
    done = subprocess.run(
        check_command(proxy, kamailio), capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        complaint = [
            line for line in done.stderr.splitlines() if "ERROR" in line or "CRITICAL" in line
        ]
        raise ProxyUnavailable(
            "kamailio refuses the configuration in "
            f"{proxy.workdir}: {' | '.join(complaint[-3:]) or done.stderr[-500:]}"
        )


def run_proxy(proxy: Proxy) -> int:
    """Run the proxy until SIGTERM/SIGINT or until Kamailio exits; its exit status."""
    kamailio = kamailio_program()
    write_files(proxy)
    check(proxy, kamailio)
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    command = kamailio_command(proxy, kamailio)
    log.info("proxy: %s", " ".join(command))
    process = subprocess.Popen(command, preexec_fn=_child_setup)
    try:
        log.info(
            "proxy on sip:%s:%d for %d carrier network(s), nodes %s",
            *proxy.listen,
            len(proxy.carriers),
            ", ".join(f"{host}:{port}" for host, port in proxy.nodes),
        )
        while not stopping:
            if process.poll() is not None:
                log.error("proxy: kamailio exited (%s)", process.returncode)
                return process.returncode or 1
            time.sleep(0.2)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stop(process)
        # Kamailio, no longer root, cannot remove its socket from a folder
        # it was given; the next run must bind the name again.
        proxy.ctl_socket.unlink(missing_ok=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
