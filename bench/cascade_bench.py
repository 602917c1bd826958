#!/usr/bin/env python3
"""The cascade's figures: the delay an edge adds, its CPU per listener, and *1 to the console.

**Delay and CPU** (the default): an edge's media path with N listeners, without SIP,
as bench/media_bench.py measures a standalone node's: the real
``RelayedConference`` (the edge's conference), real ``CallLeg``s on real
``RtpSocket``s, the encode-once batch fan-out (``FanOut``), the edge's
``MediaPort``, pinned to one core. A far end on the other core plays the
origin: every 20 ms it sends one frame of "mix" (PCMU, the mix's SSRC, a
payload unique to the frame) to the edge's media port, and it owns every
listener's socket; on ten probe listeners it matches each arriving payload
with the moment that frame left the "origin". That is the delay from the
origin's send (a few microseconds after its mix) through the edge to the
listener: the origin → edge hop, the edge's relay, the edge → listener hop,
all on loopback.

**\\*1** (``--star1``): PostgreSQL, an origin and an edge (``callbridge
serve``), a phone on the edge; the phone presses ``*1`` and the bench polls
the origin's console API until the caller is in the queue, then ``*2`` and
waits for the queue to empty, ``--rounds`` times. The time includes the key
itself (the phone sends the RFC 4733 event over about 100 ms).

    .venv/bin/python bench/cascade_bench.py                       # 500 listeners
    .venv/bin/python bench/cascade_bench.py --listeners 200 --seconds 20
    .venv/bin/python bench/cascade_bench.py --star1 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from figures import percentiles  # noqa: E402

EDGE_CORE, LOAD_CORE = "0", "1"
PROBES = 10
WARM_UP = 3.0
EVENT = 1


def offer(port: int) -> bytes:
    return (
        "v=0\r\no=far 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
    ).encode()


# -- the edge --------------------------------------------------------------------------------


async def edge(far: list[int], seconds: float, out: Path, sender: str) -> None:
    from callbridge.bridge.batch_send import batch_sender
    from callbridge.bridge.fanout import FanOut
    from callbridge.bridge.leg import CallLeg
    from callbridge.bridge.rtp_transport import BatchReader, RtpPortPool, RtpSocket
    from callbridge.cascade.feed import MediaPort, mix_ssrc
    from callbridge.cascade.relayed import RelayedConference
    from callbridge.media.clock import MediaClock
    from callbridge.media.prompts import PromptPlayer, default_library
    from callbridge.rtp.codecs import encoder
    from callbridge.sip.sdp import SdpSession

    loop = asyncio.get_running_loop()
    library = default_library()
    media_sender = batch_sender(sender)
    conference = RelayedConference(
        EVENT, encoder, audience=lambda: FanOut(media_sender), uplink=lambda p, pcm: None
    )
    conference.start()
    pool = RtpPortPool(20000, 29999)
    reader = BatchReader()
    for index, port in enumerate(far):
        sock, local_port = pool.bind("127.0.0.1")
        negotiated = SdpSession("127.0.0.1").negotiate(offer(port), local_port)
        rtp = RtpSocket(sock, lambda d, a, t: None, loop, reader)
        leg = CallLeg(
            f"leg-{index}", None, f"caller {index}", ("127.0.0.1", port), negotiated,
            local_port, rtp.sendto, PromptPlayer(library), loop.time(), rtp=rtp,
        )  # fmt: skip
        leg.participant = conference.join(leg, may_talk=False)
    mix = mix_ssrc(EVENT)
    relayed = [0]

    def on_frame(ssrc: int, payload: bytes, source: tuple[str, int], now: float) -> None:
        if ssrc == mix:
            conference.relay_mix(payload, now)
            relayed[0] += 1

    port = MediaPort(on_frame, lambda host: host == "127.0.0.1", loop.time)
    await port.open("127.0.0.1")
    # The edge's own clock runs as it does in serve (hold music, callers' audio up).
    clock = MediaClock(lambda n: conference.tick(loop.time(), n), loop=loop)
    gc.collect()
    gc.freeze()
    clock.start()
    (out / "edge-port.json").write_text(json.dumps(port.address[1]))
    await asyncio.sleep(WARM_UP)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(seconds)
    after, span = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - started
    clock.stop()
    port.close()
    (out / "edge.json").write_text(
        json.dumps(
            {
                "user": (after.ru_utime - before.ru_utime) / span * 100,
                "system": (after.ru_stime - before.ru_stime) / span * 100,
                "relayed": relayed[0],
                "sender": media_sender.name,
            }
        )
    )


# -- the far end: the origin's feed, and every listener's socket ------------------------------


def far_end(count: int, seconds: float, out: Path) -> None:
    from callbridge.cascade.feed import mix_ssrc

    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        socks.append(sock)
    (out / "far-ports.json").write_text(json.dumps([s.getsockname()[1] for s in socks]))
    port_file = out / "edge-port.json"
    while not port_file.exists():
        time.sleep(0.05)
    target = ("127.0.0.1", json.loads(port_file.read_text()))
    origin = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    origin.bind(("127.0.0.1", 0))
    probes = {socks[i].fileno() for i in range(0, count, max(1, count // PROBES))}
    poller = select.epoll()
    # Only the probes are read: the other listeners' sockets are there to be sent to
    # (what overflows their buffers the kernel drops), and reading them all here
    # would delay the probes' timestamps by the far end's own backlog.
    by_fd = {s.fileno(): s for s in socks if s.fileno() in probes}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    sent_at: dict[bytes, float] = {}
    delays: list[float] = []
    received = 0
    ssrc = mix_ssrc(EVENT)
    start = time.monotonic()
    end, measure_from = start + WARM_UP + seconds, start + WARM_UP
    frame, next_send = 0, start
    while (now := time.monotonic()) < end:
        if now >= next_send:
            # A payload unique to the frame: its number, spread over the 160 octets.
            payload = struct.pack("!I", frame) * 40
            header = struct.pack("!BBHII", 0x80, 0, frame & 0xFFFF, frame * 160, ssrc)
            sent = time.monotonic()
            origin.sendto(header + payload, target)
            sent_at[payload] = sent
            if len(sent_at) > 500:
                sent_at.pop(next(iter(sent_at)))
            frame += 1
            next_send += 0.020
        for fd, _ in poller.poll(max(0.0, next_send - time.monotonic())):
            sock = by_fd[fd]
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                received += 1
                if time.monotonic() >= measure_from:
                    left = sent_at.get(data[12:])
                    if left is not None:
                        delays.append(1000 * (time.monotonic() - left))
    (out / "far.json").write_text(
        json.dumps({"delays": delays, "received": received, "frames": frame})
    )


def run_media(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        here = [sys.executable, __file__, "--role"]
        far = subprocess.Popen(
            ["taskset", "-c", LOAD_CORE, *here, "far", "--listeners", str(args.listeners),
             "--seconds", str(args.seconds), "--out", folder],
        )  # fmt: skip
        ports_file = out / "far-ports.json"
        while not ports_file.exists():
            time.sleep(0.05)
        edge_process = subprocess.run(
            ["taskset", "-c", EDGE_CORE, *here, "edge", "--out", folder,
             "--seconds", str(args.seconds), "--sender", args.sender],
            check=True,
        )  # fmt: skip
        assert edge_process.returncode == 0
        far.wait(timeout=60)
        result: dict[str, Any] = json.loads((out / "edge.json").read_text())
        result |= json.loads((out / "far.json").read_text())
        return result


# -- *1 to the console, with real processes ----------------------------------------------------


def run_star1(args: argparse.Namespace) -> list[float]:
    from tests.cascade.conftest import cascade
    from tests.support.phone import Phone
    from tests.telephony.conftest import DID

    times: list[float] = []
    with tempfile.TemporaryDirectory() as folder, cascade(Path(folder)) as up:
        origin, edge_node = up.origin, up.edges[0]
        event = origin.create_event(passcode="4242")
        assert origin.api("POST", f"/api/events/{event.id}/start").status_code == 200
        with Phone(edge_node.sip_port, DID) as phone:
            phone.call()
            time.sleep(1.0)
            phone.press("4242#")
            while not up.live(event.id)["participants"]:
                time.sleep(0.1)
            time.sleep(2.0)
            for _ in range(args.rounds):
                pressed = time.monotonic()
                phone.press("*1")
                while not up.live(event.id)["queue"]:
                    time.sleep(0.005)
                times.append(1000 * (time.monotonic() - pressed))
                phone.press("*2")
                while up.live(event.id)["queue"]:
                    time.sleep(0.02)
                time.sleep(1.0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listeners", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sender", default="auto", choices=["auto", "io_uring", "sendto"])
    parser.add_argument("--star1", action="store_true", help="measure *1 to the console")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--role", choices=["edge", "far"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "far":
        far_end(args.listeners, args.seconds, Path(args.out))
        return 0
    if args.role == "edge":
        far = json.loads((Path(args.out) / "far-ports.json").read_text())
        import uvloop

        uvloop.run(edge(far, args.seconds, Path(args.out), args.sender))
        return 0
    if args.star1:
        times = run_star1(args)
        print(f"*1 on an edge to the origin's console (ms, {len(times)} presses): "
              f"{percentiles(times)}")  # fmt: skip
        return 0
    result = run_media(args)
    cpu = result["user"] + result["system"]
    print(f"edge with {args.listeners} listeners ({result['sender']}), {args.seconds:.0f} s:")
    print(f"  origin send -> edge -> listener (ms): {percentiles(result['delays'])}")
    print(f"  edge CPU: {cpu:.1f}% of a core (user {result['user']:.1f}%, "
          f"system {result['system']:.1f}%)")  # fmt: skip
    print(f"  frames relayed {result['relayed']} of {result['frames']} sent; "
          f"packets to the {PROBES} probes {result['received']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
