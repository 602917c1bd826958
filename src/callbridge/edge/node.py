"""Run one cache node: varnishd (and hitch for HTTPS) as child processes, until a signal.

``callbridge cache`` runs this on a cache host; ``callbridge serve --cache``
runs it beside the origin on one machine. Either way the processes die with
the one that started them, and stop on SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time

from callbridge.edge.varnish import Address, CacheNode, hitch_command, varnishd_command, write_files
from callbridge.engines import program, run_engines

log = logging.getLogger(__name__)


class CacheUnavailable(RuntimeError):
    """What the cache tier needs is not installed; the message says what to install."""


def _program(name: str, package: str) -> str:
    path = program(name)
    if path is None:
        raise CacheUnavailable(
            f"{name} is not installed (Debian package {package}: scripts/install-system cache)"
        )
    return path


def free_loopback_port() -> int:
    """A TCP port nobody listens on now (for hitch to reach Varnish on)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_listening(address: Address, timeout: float) -> bool:
    """Whether something accepts TCP connections at ``address`` within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.5):
            return True
        time.sleep(0.1)
    return False


def _wait_free(address: Address, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
                return
            except OSError:
                time.sleep(0.2)


def run_cache_node(node: CacheNode) -> int:
    """Run the node until SIGTERM/SIGINT or until one of its processes exits; its exit status."""
    commands = [varnishd_command(node, _program("varnishd", "varnish"))]
    if node.tls_listen is not None:
        commands.append(hitch_command(node, _program("hitch", "hitch")))
    write_files(node)
    # A node started again right after its last run (the supervisor restarts
    # it) may find the old Varnish still letting go of the port.
    _wait_free(node.listen, timeout=15)

    def started() -> None:
        log.info(
            "cache on http://%s:%d%s, origin %s:%d",
            *node.listen,
            f" and https://{node.tls_listen[0]}:{node.tls_listen[1]}" if node.tls_listen else "",
            *node.origin,
        )

    return run_engines("cache", commands, started)
