"""Every leg's RTCP (glue): its port + 1 socket, its reports when owed, the counters.

A leg (``bridge.leg.CallLeg``) builds and reads RTCP itself (``rtp.rtcp``);
this sends what it owes and hands it what arrives. Where rtcp-mux was agreed
the leg's RTP socket carries both; elsewhere RTCP has a socket of its own
on the RTP port + 1 (RFC 3550 section 11), read by the loop. A leg whose
port + 1 cannot be had (taken, or no file descriptor left) goes on without
RTCP. Every leg is looked at four times a second for a report owed (each
owes one every ~5 s): a thousand legs cost a fraction of a millisecond there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable

from callbridge.bridge.leg import Address, CallLeg

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.25


class RtcpPlane:
    """The legs' RTCP sockets and reports."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._socks: dict[str, tuple[socket.socket, asyncio.AbstractEventLoop]] = {}
        self._ended = [0, 0, 0]  # of legs that have ended: reports sent, read, unreadable

    def open(self, loop: asyncio.AbstractEventLoop, call_id: str, leg: CallLeg, port: int) -> None:
        """The leg's RTCP socket on ``port`` + 1, read by ``loop``."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as error:  # out of file descriptors: the call goes on without RTCP
            log.debug("leg %s: no RTCP socket: %s", call_id, error)
            return
        try:
            sock.bind((self.host, port + 1))
        except OSError as error:
            sock.close()
            log.debug("leg %s: no RTCP port %d: %s", call_id, port + 1, error)
            return
        sock.setblocking(False)

        def readable() -> None:
            for _ in range(16):
                try:
                    data, addr = sock.recvfrom(2048)
                except OSError:  # BlockingIOError: drained; anything else: nothing to read
                    return
                leg.receive_rtcp(data, (addr[0], addr[1]), loop.time())

        def send(data: bytes, addr: Address) -> None:
            with contextlib.suppress(OSError):
                sock.sendto(data, addr)

        loop.add_reader(sock.fileno(), readable)
        leg.rtcp_send = send
        self._socks[call_id] = (sock, loop)

    def close(self, call_id: str, leg: CallLeg | None) -> None:
        """The leg has ended: its socket closed, its counts kept."""
        opened = self._socks.pop(call_id, None)
        if opened is not None:
            sock, loop = opened
            if not loop.is_closed():
                loop.remove_reader(sock.fileno())
            sock.close()
        if leg is not None:
            self._ended[0] += leg.rtcp.sent
            self._ended[1] += leg.rtcp.received
            self._ended[2] += leg.rtcp.bad

    async def run(
        self, loop: asyncio.AbstractEventLoop, legs: Callable[[], Iterable[CallLeg]]
    ) -> None:
        """Each leg's report when it is owed (``rtp.rtcp.RtcpSession.due``)."""
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            now, wall = loop.time(), time.time()
            for leg in list(legs()):
                if leg.rtcp.due(now):
                    try:
                        leg.send_rtcp(now, wall)
                    except Exception:  # a bug: logged, and the other legs still report
                        log.exception("leg %s: RTCP report failed", leg.call_id)

    def counters(self, legs: Iterable[CallLeg]) -> dict[str, float]:
        """Reports sent and read (and unreadable) since start; what the peers report now:
        the legs reporting, their worst loss (fraction), worst jitter and round trip (ms),
        and the packets they have lost of ours in all."""
        live = list(legs)
        views = [leg.rtcp.peer for leg in live if leg.rtcp.peer is not None]
        rtts = [v.rtt_ms for v in views if v.rtt_ms is not None]
        return {
            "sent": self._ended[0] + sum(leg.rtcp.sent for leg in live),
            "received": self._ended[1] + sum(leg.rtcp.received for leg in live),
            "bad": self._ended[2] + sum(leg.rtcp.bad for leg in live),
            "legs_reported": len(views),
            "peer_worst_fraction_lost": max((v.fraction_lost for v in views), default=0.0),
            "peer_worst_jitter_ms": max((v.jitter_ms for v in views), default=0.0),
            "peer_lost": sum(max(v.cumulative_lost, 0) for v in views),
            "worst_rtt_ms": max(rtts, default=0.0),
        }
