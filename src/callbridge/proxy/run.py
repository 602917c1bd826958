"""Run one SIP proxy: Kamailio as a child process, until a signal.

``callbridge proxy`` runs this on the proxy's host. Kamailio dies with the
process that started it and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import subprocess

from callbridge.engines import program, run_engines
from callbridge.proxy.kamailio import Proxy, check_command, kamailio_command, write_files

log = logging.getLogger(__name__)


class ProxyUnavailable(RuntimeError):
    """Kamailio is missing or refuses the configuration; the message says what to do."""


def kamailio_program() -> str:
    """Kamailio's path; raises ProxyUnavailable naming the package when it is absent."""
    path = program("kamailio")
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

    def started() -> None:
        log.info(
            "proxy on sip:%s:%d for %d carrier network(s), nodes %s",
            *proxy.listen,
            len(proxy.carriers),
            ", ".join(f"{host}:{port}" for host, port in proxy.nodes),
        )
        if proxy.speaker_lines:
            log.info(
                "speaker lines %s go to %s",
                ", ".join(f"+{line}" for line in proxy.speaker_lines),
                ", ".join(f"{host}:{port}" for host, port in proxy.speaker_nodes),
            )

    try:
        return run_engines("proxy", [kamailio_command(proxy, kamailio)], started)
    finally:
        # Kamailio, no longer root, cannot remove its socket from a folder
        # it was given; the next run must bind the name again.
        proxy.ctl_socket.unlink(missing_ok=True)
