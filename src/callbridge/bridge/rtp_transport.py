"""RTP sockets for call legs: a port pool and a thin asyncio datagram protocol.

Each leg gets its own even-numbered UDP port from the configured range (RTCP,
if a peer sends it, arrives on the same socket and is dropped by the leg).
The protocol parses nothing: it hands datagrams to the leg with the loop's
time, as the sans-IO habit asks.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

log = logging.getLogger(__name__)

Address = tuple[str, int]
DatagramHandler = Callable[[bytes, Address, float], None]


class PortRangeExhausted(Exception):
    """No free even port is left in the RTP range."""


class RtpPortPool:
    """Hands out even UDP ports from [low, high], round robin so a port rests before reuse."""

    def __init__(self, low: int, high: int) -> None:
        if low % 2:
            low += 1
        if high <= low:
            raise ValueError("the RTP port range is empty")
        self.low, self.high = low, high
        self._in_use: set[int] = set()
        self._next = low

    def _candidates(self) -> list[int]:
        ports = list(range(self.low, self.high + 1, 2))
        start = (self._next - self.low) // 2
        return ports[start:] + ports[:start]

    def bind(self, host: str) -> tuple[socket.socket, int]:
        """A bound, non-blocking UDP socket on a free port of the range."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for port in self._candidates():
            if port in self._in_use:
                continue
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            # A burst of a thousand listeners' silence must not overflow the queue.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            self._in_use.add(port)
            self._next = port + 2 if port + 2 <= self.high else self.low
            return sock, port
        raise PortRangeExhausted(f"no free RTP port in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self._in_use.discard(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)


class RtpProtocol(asyncio.DatagramProtocol):
    """Feeds every datagram to ``handler(data, addr, now)``; sends what it is given."""

    def __init__(
        self,
        handler: DatagramHandler,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket | None = None,
    ) -> None:
        self.handler = handler
        self.loop = loop
        self.transport: asyncio.DatagramTransport | None = None
        # Media goes out through the socket itself: a 20 ms frame that cannot be
        # sent at once is better dropped (and counted) than queued behind the
        # next one, which the transport's buffering would do.
        self.sock = sock
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.handler(data, addr, self.loop.time())
        except Exception:
            # A bad packet on one leg must never take the loop down.
            log.exception("RTP handler failed for a datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a caller who hung up: not our problem.
        log.debug("RTP socket error: %s", exc)

    def sendto(self, data: bytes, addr: Address) -> None:
        if self.sock is not None:
            try:
                self.sock.sendto(data, addr)
            except OSError:
                # Full buffer (BlockingIOError), or the caller's port is gone.
                self.dropped += 1
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if self.transport is not None:
            self.transport.close()
        elif sock is not None:
            sock.close()
