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

import random
import socket

LOW, HIGH = 20000, 30000


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that is free for both UDP and TCP now."""
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randrange(LOW, HIGH)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind((host, port))
            with socket.socket() as tcp:
                tcp.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port in {LOW}-{HIGH - 1} on {host}")
