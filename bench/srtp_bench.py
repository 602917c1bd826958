#!/usr/bin/env python3
"""What SRTP costs per 1,000 listeners: the fan-out with plain RTP legs against SRTP legs.

The real ``FanOut`` with real ``CallLeg``s on real sockets (every leg's far
end is one socket that nobody reads: the kernel drops what overflows, as a
far phone would take it). The mix is encoded once per frame either way; every
leg's packet is built in one batch; an SRTP leg's row is then protected in
place under its own key (libsrtp, AES-CM-128 + HMAC-SHA1-80), and all rows
go out in one submission (io_uring where the kernel allows it). Also: the bare
cost of ``protect`` for 1,000 packets, the floor of any SRTP design.

    .venv/bin/python bench/srtp_bench.py                 # 1,000 listeners, 5 x 100 ticks
    .venv/bin/python bench/srtp_bench.py --listeners 500 --sender sendto
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from callbridge.bridge.batch_send import batch_sender
from callbridge.bridge.fanout import FanOut
from callbridge.bridge.leg import CallLeg
from callbridge.bridge.rtp_transport import BatchReader, RtpPortPool, RtpSocket
from callbridge.media.prompts import PromptPlayer, default_library
from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.srtp import SrtpContext
from callbridge.sip.crypto import CryptoAttribute
from callbridge.sip.sdp import SdpSession, SrtpPolicy

TICK = 0.020


def offer(port: int, srtp: bool) -> bytes:
    text = (
        "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/{'SAVP' if srtp else 'AVP'} 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    if srtp:
        key = CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", secrets.token_bytes(30))
        text += f"a=crypto:{key.format()}\r\n"
    return text.encode()


def legs(count: int, srtp: bool, far: int, loop: asyncio.AbstractEventLoop) -> list[CallLeg]:
    pool = RtpPortPool(40000, 40000 + 2 * count + 10)
    library = default_library()
    made = []
    for i in range(count):
        sock, port = pool.bind("127.0.0.1")
        rtp = RtpSocket(sock, lambda data, addr, now: None, loop, BatchReader())
        policy = SrtpPolicy.REQUIRED if srtp else SrtpPolicy.OFF
        negotiated = SdpSession("127.0.0.1", srtp=policy).negotiate(offer(far, srtp), port)
        made.append(
            CallLeg(f"c{i}", None, "x", ("127.0.0.1", far), negotiated, port, rtp.sendto,
                    PromptPlayer(library), 0.0, rtp)
        )  # fmt: skip
    return made


def fan_out(count: int, srtp: bool, ticks: int, sender_kind: str) -> float:
    """Seconds per tick (best round) to send one encoded frame to ``count`` legs."""

    async def run() -> float:
        loop = asyncio.get_running_loop()
        far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        far.bind(("127.0.0.1", 0))
        members = legs(count, srtp, far.getsockname()[1], loop)
        sender = batch_sender(sender_kind)
        fanout = FanOut(sender)
        payload = {"PCMU": bytes(np.full(160, 0x55, dtype=np.uint8))}
        fanout.send(members, payload, {}, 0.0)  # lays the rows out
        # The best of five rounds: on a shared machine the others' load only adds.
        spent = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(ticks):
                fanout.send(members, payload, {}, 0.0)
            spent = min(spent, (time.perf_counter() - start) / ticks)
        if srtp:
            # The protect step alone (the rows built, then protected; nothing sent).
            batch = fanout._batch
            assert batch is not None
            step = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for _ in range(ticks):
                    batch.build([payload["PCMU"]], fanout._sending, {})
                    fanout._protect(batch)
                step = min(step, (time.perf_counter() - start) / ticks)
            print(f"  protect step in the fan-out (build + protect rows) {step * 1000:.2f} ms/tick")
        fanout.close()
        sender.close()
        for leg in members:
            assert leg.rtp is not None
            leg.rtp.close()
        far.close()
        return spent

    return asyncio.run(run())


def protect_only(count: int, ticks: int) -> float:
    """Seconds per tick (best round) for ``count`` protects of a 172-byte packet each."""
    contexts = [
        SrtpContext("AES_CM_128_HMAC_SHA1_80", secrets.token_bytes(30), secrets.token_bytes(30))
        for _ in range(count)
    ]
    packets = [RtpPacket(0, 1, 160, i, b"\x55" * 160).serialize() for i in range(count)]
    spent = float("inf")
    sequence = 0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(ticks):
            sequence += 1
            head = sequence.to_bytes(2, "big")
            for context, packet in zip(contexts, packets, strict=True):
                context.protect(packet[:2] + head + packet[4:])
        spent = min(spent, (time.perf_counter() - start) / ticks)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=100, help="per round (best of 5)")
    parser.add_argument("--sender", default="auto", choices=["auto", "io_uring", "sendto"])
    args = parser.parse_args()
    n, ticks = args.listeners, args.ticks
    print(f"{n} listeners, best of 5 x {ticks} ticks of 20 ms, sender {args.sender}")
    plain = fan_out(n, False, ticks, args.sender)
    secure = fan_out(n, True, ticks, args.sender)
    bare = protect_only(n, ticks)
    for name, spent in (
        ("fan-out, plain RTP (batch)", plain),
        ("fan-out, SRTP (batch, rows protected)", secure),
        ("libsrtp protect alone", bare),
    ):
        print(f"  {name:40s} {spent * 1000:7.2f} ms/tick  {100 * spent / TICK:5.1f} % of a core")
    print(f"  SRTP costs {100 * (secure - plain) / TICK:.1f} % of a core more per {n} listeners")


if __name__ == "__main__":
    main()
