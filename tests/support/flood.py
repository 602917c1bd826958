"""A listener's phone on the wire, and the floods a stranger sends, for the flood tests and bench.

``WireListener`` is the media half of a phone whose SIP half is sipp
(``scenarios/listen_on_port.xml`` offers the listener's own UDP port in its
SDP): it keys the passcode as RFC 4733 from that port, sends 20 ms of PCMU
silence every 20 ms as a phone does, and timestamps every frame the bridge
sends it, so a hole in the call's audio shows as a gap between arrivals.

The floods are bounded in count and time and aim only at loopback. Run them
with ``in_another_process``: in the listener's process they would take the GIL
from its threads and show the test's own stalls as the bridge's.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

from callbridge.rtp.g711 import ulaw_encode
from callbridge.rtp.packet import RtpPacket
from tests.support.pcap import passcode_stream
from tests.support.sipp import SCENARIOS, run_sipp
from tests.telephony.conftest import RunningServer

T = TypeVar("T")

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Arrivals:
    times: list[float] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[float]:
        return [t for t in self.times if start <= t < end]

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without a frame between ``start`` and ``end`` (seconds)."""
        inside = [start, *self.between(start, end), end]
        return max(b - a for a, b in itertools.pairwise(inside))


class WireListener:
    """A phone's RTP side on 127.0.0.1: keys a passcode, then listens and keeps the line alive."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.arrivals = Arrivals()
        self.bridge: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._receiver = threading.Thread(target=self._receive, daemon=True)
        self._sender: threading.Thread | None = None

    def start(self) -> None:
        self._receiver.start()

    def key_in(self, passcode: str, timeout: float = 15.0) -> None:
        """After the bridge's first frame (its RTP address), key ``passcode``; then keep talking."""
        deadline = time.monotonic() + timeout
        while self.bridge is None:
            if time.monotonic() > deadline:
                raise AssertionError("the bridge sent no RTP to the listener")
            time.sleep(0.02)
        # The bridge's first frames can come before its 200 OK (the answer is
        # delayed a little); a phone keys only once the call is answered.
        time.sleep(0.6)
        self._sender = threading.Thread(target=self._send, args=(passcode,), daemon=True)
        self._sender.start()

    def close(self) -> None:
        self._stop.set()
        self._receiver.join(2)
        if self._sender is not None:
            self._sender.join(2)
        self.sock.close()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                _, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            self.arrivals.times.append(time.monotonic())
            if self.bridge is None:
                self.bridge = addr

    def _send(self, passcode: str) -> None:
        assert self.bridge is not None
        stream = passcode_stream([passcode], lead_in=0.2)
        start = time.monotonic()
        last = stream[-1].packet
        for item in stream:
            self._sleep_until(start + item.at)
            self.sock.sendto(bytes(item.packet), self.bridge)
        # After the keys, silence every 20 ms: the bridge drops a leg that goes quiet.
        silence = ulaw_encode(np.zeros(160, np.int16))
        seq, ts, t = last.sequence_number, last.timestamp, time.monotonic()
        while not self._stop.is_set():
            seq, ts, t = (seq + 1) & 0xFFFF, (ts + 160) & 0xFFFFFFFF, t + 0.02
            self._sleep_until(t)
            packet = RtpPacket(0, seq, ts, last.ssrc, silence)
            try:
                self.sock.sendto(bytes(packet), self.bridge)
            except OSError:
                return

    def _sleep_until(self, when: float) -> None:
        delay = when - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)


@dataclass
class LoginFloodResult:
    attempts: int
    statuses: dict[int, int]
    errors: int


async def _login_flood(url: str, concurrency: int, seconds: float, limit: int) -> LoginFloodResult:
    statuses: dict[int, int] = {}
    errors = 0
    attempts = 0
    deadline = time.monotonic() + seconds

    async def one_attacker(index: int) -> None:
        nonlocal errors, attempts
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            while time.monotonic() < deadline and attempts < limit:
                attempts += 1
                try:
                    page = await client.get("/login")
                    token = _CSRF.search(page.text)
                    response = await client.post(
                        "/login",
                        data={
                            "name": "operator",
                            "password": f"guess-{index}-{attempts}",
                            "csrf_token": token.group(1) if token else "",
                        },
                    )
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                except httpx.HTTPError:
                    errors += 1

    await asyncio.gather(*(one_attacker(i) for i in range(concurrency)))
    return LoginFloodResult(attempts, statuses, errors)


def login_flood(
    url: str, concurrency: int = 120, seconds: float = 10.0, limit: int = 5000
) -> LoginFloodResult:
    """``concurrency`` strangers guessing the operator's password for ``seconds`` (bounded)."""
    return asyncio.run(_login_flood(url, concurrency, seconds, limit))


@dataclass
class SipFloodResult:
    tcp_connections: int
    udp_datagrams: int
    answers: int


def _invite(target: str, source: str, n: int) -> bytes:
    body = (
        f"v=0\r\no=x 1 1 IN IP4 {source}\r\ns=-\r\nc=IN IP4 {source}\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\n"
    )
    return (
        f"INVITE sip:19135550123@{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:5099;branch=z9hG4bKflood{n}\r\n"
        f"From: <sip:stranger@{source}>;tag=f{n}\r\n"
        f"To: <sip:19135550123@{target}>\r\n"
        f"Call-ID: flood-{n}@{source}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:stranger@{source}:5099>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def sip_flood(
    port: int, source: str = "127.0.0.2", seconds: float = 10.0, limit: int = 200_000
) -> SipFloodResult:
    """INVITEs from ``source`` (a non-trunk address) over TCP and UDP for ``seconds`` (bounded)."""
    target = f"127.0.0.1:{port}"
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((source, 0))
    udp.setblocking(False)
    deadline = time.monotonic() + seconds
    connections = datagrams = answers = 0
    n = 0
    while time.monotonic() < deadline and n < limit:
        n += 1
        message = _invite(target, source, n)
        try:
            udp.sendto(message, ("127.0.0.1", port))
            datagrams += 1
        except BlockingIOError:
            pass
        try:
            while udp.recv(4096):
                answers += 1
        except (BlockingIOError, ConnectionRefusedError):
            pass
        tcp = socket.socket()
        tcp.settimeout(0.2)
        try:
            tcp.bind((source, 0))
            tcp.connect(("127.0.0.1", port))
            connections += 1
            tcp.sendall(message)
            if tcp.recv(4096):
                answers += 1
        except OSError:
            pass
        finally:
            tcp.close()
    udp.close()
    return SipFloodResult(connections, datagrams, answers)


def _run_and_send(conn: Any, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # The flood stands for a stranger's own machine: on this one it must not
    # take the CPU from the server (or the listener) whose resistance is measured.
    os.nice(10)
    conn.send(target(*args))
    conn.close()


def in_another_process(target: Callable[..., T], *args: Any) -> T:
    """``target(*args)`` in a fresh process; its result (picklable) comes back."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_run_and_send, args=(sender, target, args))
    process.start()
    sender.close()
    try:
        result: T = receiver.recv()
    finally:
        process.join(30)
    return result


@dataclass
class Heard:
    """What the listener heard while a flood ran, and how late the media clock was."""

    seconds: float
    frames: int
    longest_gap: float
    p99_lateness_ms: float
    flood: Any
    ticks_skipped: int
    lateness_ms: dict[str, Any]

    def __str__(self) -> str:
        return (
            f"{self.flood}: {self.seconds:.1f} s, the listener got {self.frames} frames, "
            f"longest gap {self.longest_gap * 1000:.1f} ms; media clock lateness "
            f"p50 {self.lateness_ms['p50']} / p99 {self.lateness_ms['p99']} / "
            f"max {self.lateness_ms['max']} ms, ticks skipped {self.ticks_skipped}"
        )


def listen_through(
    server: RunningServer, tmp_path: Path, flood: Callable[[int], Any], **event_options: Any
) -> Heard:
    """Join a listener to a live call, run ``flood(event_id)``, say what the listener heard."""
    event = server.create_event(**event_options)
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    listener = WireListener()
    listener.start()
    # sipp is only the phone's SIP half here: what the listener hears is the measure.
    sipp = threading.Thread(
        target=run_sipp,
        args=(SCENARIOS / "listen_on_port.xml", server.sip_target, tmp_path),
        kwargs={
            "substitutions": {"media_port": str(listener.port), "stay_ms": "40000"},
            "timeout": 70,
        },
        daemon=True,
    )
    sipp.start()
    try:
        listener.key_in(event.passcode + "#")
        server.wait_for(
            lambda: any(p["state"] == "connected" for p in server.participants(event.id)),
            timeout=20,
        )
        time.sleep(1.0)
        skipped_before = server.api("GET", "/api/bridge/stats").json()["ticks_skipped"]
        start = time.monotonic()
        outcome = flood(event.id)
        end = time.monotonic()
        time.sleep(0.5)
        # A server the flood overwhelmed answers late (the old one took over a minute).
        stats = server.api("GET", "/api/bridge/stats", timeout=180).json()
        skipped = stats["ticks_skipped"] - skipped_before
        gap = listener.arrivals.longest_gap(start, end)
        frames = len(listener.arrivals.between(start, end))
        lateness = stats["tick_lateness_ms"]
        return Heard(end - start, frames, gap, lateness["p99"], outcome, skipped, lateness)
    finally:
        listener.close()
        server.api("POST", f"/api/events/{event.id}/end")
        sipp.join(80)
