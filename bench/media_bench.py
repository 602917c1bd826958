#!/usr/bin/env python3
"""The bridge's media path with many listeners: the headline scenario without SIP.

5 talking speakers and 1,000 listen-only legs in one conference, measured on
the media path alone: the real ``Conference`` (mixer, G.711, fan-out) on the
real ``MediaClock``, real ``CallLeg`` objects (RTP in, jitter buffer, keys,
RTP out) on real ``RtpSocket``s, a port per leg, quiet legs drained as the
bridge does (``rtp_transport.sweep``). SIP is left out: once a leg is in the
call it costs nothing there (bench/dialin_bench.py measures the whole
server with sipp callers, but sipp, one process on one core, cannot keep
1,000 RTP streams going: its watchdog trips and calls starve).

The far end is a plain process on the other core with one UDP socket per
caller: it sends 20 ms of PCMU every 20 ms from that socket (a tone from the
speakers, silence from the listeners) and timestamps what comes back for
ten listeners.

The same far end can call a reference bridge instead: ``--reference janus``
runs Janus's AudioBridge (Debian package ``janus``) on the bridge's core,
with every caller a plain-RTP participant in one PCMU room at 8 kHz
(speakers unmuted, listeners muted), and prints both, side by side.

    .venv/bin/python bench/media_bench.py                 # 1,000 listeners
    .venv/bin/python bench/media_bench.py --listeners 500 --seconds 30
    .venv/bin/python bench/media_bench.py --reference janus
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from figures import Arrival, cpu_seconds, percentiles, stream_figures  # noqa: E402
from tests.telephony.conftest import free_port  # noqa: E402

SERVER_CORE, LOAD_CORE = "0", "1"
PROBES = 10
WARM_UP = 5.0


def offer(port: int) -> bytes:
    return (
        "v=0\r\no=far 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
    ).encode()


# -- the bridge side ------------------------------------------------------------------------


async def serve(far: list[int], speakers: int, seconds: float, out: Path, sender: str) -> None:
    from callbridge.bridge.batch_send import batch_sender
    from callbridge.bridge.fanout import FanOut
    from callbridge.bridge.leg import CallLeg
    from callbridge.bridge.media_plane import QUIET_DRAIN_INTERVAL, SWEEP_SHARES
    from callbridge.bridge.rtp_transport import BatchReader, RtpPortPool, RtpSocket, sweep
    from callbridge.media.clock import MediaClock
    from callbridge.media.conference import Conference
    from callbridge.media.prompts import PromptPlayer, default_library
    from callbridge.rtp.codecs import encoder
    from callbridge.sip.sdp import SdpSession

    loop = asyncio.get_running_loop()
    library = default_library()
    media_sender = batch_sender(sender)
    conference = Conference(1, encoder, audience=lambda: FanOut(media_sender))
    conference.start()
    pool = RtpPortPool(20000, 29999)
    reader = BatchReader()
    legs: list[tuple[CallLeg, RtpSocket]] = []
    local: list[int] = []
    for index, port in enumerate(far):
        sock, local_port = pool.bind("127.0.0.1")
        negotiated = SdpSession("127.0.0.1").negotiate(offer(port), local_port)
        rtp = RtpSocket(sock, lambda d, a, t: None, loop, reader)
        leg = CallLeg(
            call_id=f"leg-{index}",
            dialled=None,
            caller=f"caller {index}",
            source=("127.0.0.1", port),
            negotiated=negotiated,
            local_port=local_port,
            send=rtp.sendto,
            prompt_player=PromptPlayer(library),
            now=loop.time(),
            rtp=rtp,
        )
        leg.participant = conference.join(leg, may_talk=index < speakers)
        rtp.handler = leg.receive
        legs.append((leg, rtp))
        local.append(local_port)

    # Every tick of the run is kept, not only the last minute.
    ticks = int((WARM_UP + seconds) / 0.020) + 100
    clock = MediaClock(lambda n: conference.tick(loop.time(), n), loop=loop, history=ticks)
    # As serve does once started (server.run).
    gc.collect()
    gc.freeze()
    clock.start()

    async def drain_quiet() -> None:
        turn = 0
        while True:
            await asyncio.sleep(QUIET_DRAIN_INTERVAL / SWEEP_SHARES)
            sweep(legs[turn::SWEEP_SHARES], loop.time())
            turn = (turn + 1) % SWEEP_SHARES

    sweeper = asyncio.create_task(drain_quiet())
    (out / "server-ports.json").write_text(json.dumps(local))
    await asyncio.sleep(WARM_UP)
    clock.lateness.clear()
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(seconds)
    after, span = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - started
    lateness = [1000 * x for x in clock.lateness]
    talkers = sum(1 for p in conference.active() if p.talking)
    clock.stop()
    sweeper.cancel()
    result = {
        "user": (after.ru_utime - before.ru_utime) / span * 100,
        "system": (after.ru_stime - before.ru_stime) / span * 100,
        "lateness": lateness,
        "skipped": clock.skipped,
        "talking": talkers,
        "dropped": sum(r.dropped for _, r in legs),
        "sender": media_sender.name,
    }
    (out / "server.json").write_text(json.dumps(result))


# -- the far end: one socket per caller ---------------------------------------------------------


def far_end(count: int, speakers: int, seconds: float, out: Path) -> None:
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        socks.append(sock)
    (out / "far-ports.json").write_text(json.dumps([s.getsockname()[1] for s in socks]))
    ports_file = out / "server-ports.json"
    while not ports_file.exists():
        time.sleep(0.05)
    targets = [("127.0.0.1", port) for port in json.loads(ports_file.read_text())]
    probes = set(range(speakers, speakers + PROBES))
    # The probes' phones are a process of their own: with little to do, it reads
    # each packet as it lands, so its timestamps are the network's, not the
    # far end's own backlog (the far end is busy sending a thousand packets).
    child = os.fork()
    if child == 0:
        try:
            phones(socks, targets, speakers, probes, seconds, out / "probes.json")
        finally:
            os._exit(0)
    others = [i for i in range(count) if i not in probes]
    phones(socks, targets, speakers, set(), seconds, out / "others.json", only=others)
    os.waitpid(child, 0)
    result = json.loads((out / "probes.json").read_text())
    result["received"] += json.loads((out / "others.json").read_text())["received"]
    (out / "far.json").write_text(json.dumps(result))


def phones(
    socks: list[socket.socket],
    targets: list[tuple[str, int]],
    speakers: int,
    probes: set[int],
    seconds: float,
    report: Path,
    only: list[int] | None = None,
) -> None:
    """Phones that send 20 ms of PCMU every 20 ms (a tone from speakers) and read all they get.

    Arrivals are timestamped on the ``probes``; ``report`` gets their figures
    and how many packets these phones received.
    """
    mine = sorted(probes) if only is None else only
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(160) / 8000)).astype(np.int16)
    from callbridge.rtp.g711 import encode

    talk, silence = encode("PCMU", tone), b"\xff" * 160
    poller = select.epoll()
    by_fd = {socks[i].fileno(): socks[i] for i in mine}
    probe_of = {socks[i].fileno(): i for i in probes}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    arrivals: dict[int, list[Arrival]] = {i: [] for i in probes}
    received = audible = 0
    start = time.monotonic()
    end = start + WARM_UP + seconds
    measure_from = start + WARM_UP
    seq = 0
    # Each phone starts its numbering at random (RFC 3550 5.1).
    starts = {i: random.getrandbits(16) for i in mine}
    next_send = start
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_send:
            for index in mine:
                header_seq = (seq + starts[index]) & 0xFFFF
                header = bytes([0x80, 0]) + header_seq.to_bytes(2, "big")
                header += (seq * 160 & 0xFFFFFFFF).to_bytes(4, "big") + index.to_bytes(4, "big")
                with contextlib.suppress(OSError):
                    socks[index].sendto(
                        header + (talk if index < speakers else silence), targets[index]
                    )
            seq += 1
            next_send += 0.020
        for fd, _ in poller.poll(max(0.0, next_send - time.monotonic())):
            sock = by_fd[fd]
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                received += 1
                probe = probe_of.get(fd)
                if probe is not None and time.monotonic() >= measure_from and len(data) >= 12:
                    arrivals[probe].append(
                        (
                            time.monotonic(),
                            int.from_bytes(data[2:4], "big"),
                            int.from_bytes(data[4:8], "big"),
                        )
                    )
                    # The speakers' tone, not silence (0xFF/0x7F are PCMU zero):
                    # proof the bridge really mixed what it was sent.
                    audible += any(octet not in (0xFF, 0x7F, 0xFE, 0x7E) for octet in data[12:])
    figures = stream_figures(arrivals.values())
    report.write_text(
        json.dumps(
            {
                "deviations": figures.deviations_ms,
                "jitter": figures.jitter_ms,
                "lost": figures.lost,
                "expected": figures.expected,
                "received": received,
                "audible": audible / max(sum(len(a) for a in arrivals.values()), 1),
            }
        )
    )


# -- the reference: Janus AudioBridge -----------------------------------------------------------

JANUS_CONFIG = """general: {{
  configs_folder = "{folder}"
  plugins_folder = "{lib}/plugins"
  transports_folder = "{lib}/transports"
  events_folder = "{lib}/events"
  loggers_folder = "{lib}/loggers"
  debug_level = 3
  session_timeout = 600
}}
media: {{
  rtp_port_range = "46000-49999"
}}
plugins: {{
  disable = "{plugins}"
}}
transports: {{
  disable = "{transports}"
}}
events: {{
  broadcast = false
}}
"""


class Janus:
    """A Janus process with the AudioBridge and the plain-HTTP API, and one session on it."""

    def __init__(self, work: Path) -> None:
        import httpx

        lib = Path("/usr/lib") / f"{os.uname().machine}-linux-gnu" / "janus"
        keep_plugin, keep_transport = "libjanus_audiobridge.so", "libjanus_http.so"
        plugins = [p.name for p in (lib / "plugins").glob("*.so") if p.name != keep_plugin]
        transports = [p.name for p in (lib / "transports").glob("*.so")]
        transports = [t for t in transports if t != keep_transport]
        folder = work / "janus"
        folder.mkdir()
        (folder / "janus.jcfg").write_text(
            JANUS_CONFIG.format(
                folder=folder,
                lib=lib,
                plugins=",".join(plugins),
                transports=",".join(transports),
            )
        )
        self.port = free_port()
        (folder / "janus.transport.http.jcfg").write_text(
            f'general: {{\n  base_path = "/janus"\n  http = true\n  port = {self.port}\n'
            '  ip = "127.0.0.1"\n  https = false\n}\nadmin: {\n  admin_http = false\n}\n'
        )
        (folder / "janus.plugin.audiobridge.jcfg").write_text(
            'general: {\n  rtp_port_range = "50000-59999"\n  local_ip = "127.0.0.1"\n}\n'
        )
        self.log = (work / "janus.log").open("wb")
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, "janus", "-F", str(folder)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=work,
            # Janus 1.1 may crash while stopping with a thousand participants: its core
            # dump (tens of GB, one stack per participant thread) is of no use here.
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)),
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}/janus", timeout=30)
        for _ in range(100):
            try:
                self.session = self.call("", {"janus": "create"})["data"]["id"]
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("Janus did not start: see " + str(work / "janus.log"))

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"transaction": os.urandom(6).hex(), **body}
        reply: dict[str, Any] = self.http.post(path, json=body).json()
        if reply.get("janus") == "error":
            raise RuntimeError(f"Janus: {reply}")
        return reply

    def events(self) -> list[dict[str, Any]]:
        """Pending events of the session (the long poll also keeps it alive)."""
        reply = self.http.get(f"/{self.session}", params={"maxev": 100}).json()
        return reply if isinstance(reply, list) else [reply]

    def room(self, far: list[int], speakers: int) -> list[int]:
        """One room, every far socket a plain-RTP participant; the ports Janus listens on."""
        handles = [
            self.call(
                f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.audiobridge"}
            )["data"]["id"]
            for _ in far
        ]
        created = self.call(
            f"/{self.session}/{handles[0]}",
            {
                "janus": "message",
                "body": {
                    "request": "create",
                    "room": 4242,
                    "sampling_rate": 8000,
                    "allow_rtp_participants": True,
                    "audiolevel_ext": False,
                    "default_prebuffering": 2,
                },
            },
        )
        assert created["plugindata"]["data"].get("audiobridge") == "created", created
        for index, (handle, port) in enumerate(zip(handles, far, strict=True)):
            self.call(
                f"/{self.session}/{handle}",
                {
                    "janus": "message",
                    "body": {
                        "request": "join",
                        "room": 4242,
                        "codec": "pcmu",
                        "muted": index >= speakers,
                        "rtp": {"ip": "127.0.0.1", "port": port, "payload_type": 0},
                    },
                },
            )
        ports: dict[int, int] = {}
        deadline = time.monotonic() + 120
        while len(ports) < len(handles) and time.monotonic() < deadline:
            for event in self.events():
                data = event.get("plugindata", {}).get("data", {})
                if data.get("audiobridge") == "joined" and "rtp" in data:
                    ports[event["sender"]] = data["rtp"]["port"]
        if len(ports) < len(handles):
            raise RuntimeError(f"only {len(ports)} of {len(handles)} joined the Janus room")
        return [ports[handle] for handle in handles]

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.http.close()


def run_janus(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="callbridge-media-janus-"))
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--listeners", str(args.listeners), "--speakers", str(args.speakers)]
    common += ["--seconds", str(args.seconds), "--out", str(out)]
    janus = Janus(out)
    far_process: subprocess.Popen[bytes] | None = None
    try:
        far_process = subprocess.Popen(["taskset", "-c", LOAD_CORE, *me, "--role", "far", *common])
        while not (out / "far-ports.json").exists():
            time.sleep(0.05)
        ports = janus.room(json.loads((out / "far-ports.json").read_text()), args.speakers)
        (out / "server-ports.json").write_text(json.dumps(ports))
        time.sleep(WARM_UP)
        before, started = cpu_seconds(janus.process.pid), time.monotonic()
        while time.monotonic() - started < args.seconds:
            janus.events()  # keeps the session alive
            time.sleep(1)
        after, span = cpu_seconds(janus.process.pid), time.monotonic() - started
        far_process.wait(timeout=args.seconds + 120)
        result: dict[str, Any] = {
            "user": (after[0] - before[0]) / span * 100,
            "system": (after[1] - before[1]) / span * 100,
        }
        result.update(json.loads((out / "far.json").read_text()))
        return result
    finally:
        if far_process is not None and far_process.poll() is None:
            far_process.kill()
        janus.close()


# -- the run -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="callbridge-media-"))
    count = args.listeners + args.speakers
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--listeners", str(args.listeners), "--speakers", str(args.speakers)]
    common += ["--seconds", str(args.seconds), "--out", str(out)]
    far = subprocess.Popen(["taskset", "-c", LOAD_CORE, *me, "--role", "far", *common])
    while not (out / "far-ports.json").exists():
        time.sleep(0.05)
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *me, "--role", "server", *common, "--sender", args.sender]
    )
    server.wait(timeout=args.seconds + 120)
    far.wait(timeout=args.seconds + 120)
    result: dict[str, Any] = json.loads((out / "server.json").read_text())
    result.update(json.loads((out / "far.json").read_text()))
    result["legs"] = count
    return result


def listener_line(r: dict[str, Any]) -> str:
    return (
        f"    at {PROBES} listeners: packet interval deviation from 20 ms (ms) "
        f"{percentiles(r['deviations'])}; RFC 3550 jitter per stream (ms) "
        f"{percentiles(r['jitter'])}; lost {r['lost']} of {r['expected']}; "
        f"packets received by the far end {r['received']}; "
        f"probe packets carrying the speakers' tone {r['audible'] * 100:.0f} %"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--speakers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, after warm-up")
    parser.add_argument("--reference", choices=["janus"], help="also run a reference bridge")
    parser.add_argument("--role", choices=["run", "server", "far"], default="run")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--sender",
        choices=["auto", "io_uring", "sendto"],
        default="auto",
        help="how the bridge sends listeners' frames (BridgeConfig.media_sender)",
    )
    args = parser.parse_args()
    if args.role == "far":
        far_end(args.listeners + args.speakers, args.speakers, args.seconds, args.out)
        return 0
    if args.role == "server":
        import uvloop

        far_ports = json.loads((args.out / "far-ports.json").read_text())
        uvloop.run(serve(far_ports, args.speakers, args.seconds, args.out, args.sender))
        return 0

    print(
        f"callbridge media benchmark: {args.speakers} talking speakers + {args.listeners} "
        f"listeners, {args.seconds:.0f} s measured after {WARM_UP:.0f} s\n"
        f"  machine: {os.cpu_count()} cores; bridge on core {SERVER_CORE}, far end on core "
        f"{LOAD_CORE}"
    )
    r = run(args)
    print(f"  callbridge (listeners' frames sent with {r['sender']}):")
    print(
        f"    CPU {r['user'] + r['system']:.1f} % of a core "
        f"(user {r['user']:.1f} %, kernel {r['system']:.1f} %)"
    )
    print(
        f"    tick lateness (ms) {percentiles(r['lateness'])}; ticks skipped {r['skipped']}; "
        f"speakers talking at the end {r['talking']}/{args.speakers}; send drops {r['dropped']}"
    )
    print(listener_line(r))
    if args.reference == "janus":
        j = run_janus(args)
        print("  Janus AudioBridge (plain-RTP participants, PCMU room at 8 kHz):")
        print(
            f"    CPU {j['user'] + j['system']:.1f} % of a core "
            f"(user {j['user']:.1f} %, kernel {j['system']:.1f} %)"
        )
        print(listener_line(j))
        ratio = (r["user"] + r["system"]) / max(j["user"] + j["system"], 0.1)
        print(f"  CPU ratio callbridge : Janus = {ratio:.2f}")
    print(
        "  reproduce: .venv/bin/python bench/media_bench.py "
        f"--listeners {args.listeners} --speakers {args.speakers} --seconds {args.seconds:.0f}"
        + (f" --sender {args.sender}" if args.sender != "auto" else "")
        + (f" --reference {args.reference}" if args.reference else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
