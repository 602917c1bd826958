"""Ports for the servers the tests start, chosen where no outgoing connection lands.

Asking the kernel for port 0 gives one from the ephemeral range (32768-60999
here), the same range every outgoing connection on the machine draws its
local port from: between the test's pick and the server's bind, a browser's
or a client's connection once took the port, and the server could not
listen. These come from 20000-29999 instead, below that range and below the
tests' RTP port ranges (30000 and up), picked at random so that the suite's
parallel workers rarely meet, and checked free for both UDP and TCP.
"""

from __future__ import annotations

import os
import random
import socket
from collections import deque

LOW, HIGH = 20000, 30000
# Each pytest-xdist worker picks from a slice of its own: between one worker's pick
# and its server's bind (seconds, on a busy machine), another worker once picked the
# same port at random and its server found it taken. Within a worker, a server is
# listening before the next one picks, and the check below sees it.
SLICES = 8


def _range() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return LOW, HIGH  # not under xdist: the serial part runs alone
    width = (HIGH - LOW) // SLICES
    start = LOW + (int(worker[2:]) % SLICES) * width
    return start, start + width


# Ports this process handed out lately: a server given three ports (SIP, web, metrics)
# binds none of them before the last is picked, so "free now" alone could pick one twice.
_RECENT: deque[int] = deque(maxlen=64)


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that is free for both UDP and TCP now, and not handed out lately."""
    pick = random.SystemRandom()
    low, high = _range()
    for _ in range(200):
        port = pick.randrange(low, high)
        if port in _RECENT:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind((host, port))
            with socket.socket() as tcp:
                tcp.bind((host, port))
        except OSError:
            continue
        _RECENT.append(port)
        return port
    raise RuntimeError(f"no free port in {low}-{high - 1} on {host}")
