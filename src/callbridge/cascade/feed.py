"""The cascade's media between nodes: RTP (PCMU, 20 ms) on one UDP port per node.

Each node binds one ``MediaPort``. Streams are told apart by their SSRC,
which both ends work out from what the stream carries (``mix_ssrc`` for an
event's mix, ``line_ssrc`` for one caller's audio, either way), so nothing
needs negotiating beyond the port each end listens on (``Subscribe`` and
``Feeding`` on the bus carry those). A datagram from an address that is not
a known node's, or that is not a PCMU frame, is dropped and counted.

On the origin: a ``MixFeed`` per event is a tap on the conference's mix
(``Conference.taps``): it encodes each tick's mix once and sends it once to
each subscribed edge, whatever the edge's listener count; an edge that has
not subscribed again for ``SUBSCRIPTION_TTL`` seconds is sent nothing more.
An edge's caller who may talk (a speaker, an open line) is a ``RemoteLeg``
of the origin's conference: its audio comes from the edge on this port, and
what the conference sends it (the mix without their own voice) goes back.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
import typing
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from callbridge.media.mixer import Pcm
from callbridge.rtp import codecs
from callbridge.rtp.seq import MAX_MISORDER, seq_diff
from callbridge.rtp.stream import RtpSender

log = logging.getLogger(__name__)

Address = tuple[str, int]
PCMU = 0
FRAME_BYTES = 160
HEADER = struct.Struct("!BBHII")
SUBSCRIPTION_TTL = 5.0
FRAME_SECONDS = 0.020
REGRID_FRAMES = 5
# Frames of a caller's audio waiting to be mixed on the origin: more is a
# backlog (a stalled tick), and the oldest go.
MAX_QUEUED_FRAMES = 5


def mix_ssrc(event_id: int) -> int:
    """The SSRC of the event's mix, origin → edge."""
    return zlib.crc32(f"mix:{event_id}".encode())


def line_ssrc(participant_id: str) -> int:
    """The SSRC of one caller's audio (edge → origin) and of what they hear (origin → edge)."""
    return zlib.crc32(f"line:{participant_id}".encode())


def parse_frame(data: bytes) -> tuple[int, int, bytes] | None:
    """(SSRC, sequence number, payload) of a PCMU frame; None for anything else."""
    if len(data) != HEADER.size + FRAME_BYTES:
        return None
    first, second, seq, _ts, ssrc = HEADER.unpack_from(data)
    if first != 0x80 or second & 0x7F != PCMU:
        return None
    return ssrc, seq, data[HEADER.size :]


# A frame up to MAX_MISORDER numbers behind its stream's newest is late (or a
# duplicate) and dropped: relayed, it would reach every listener twice or out
# of order. Further behind, the stream has restarted (a node restarted).
MAX_STREAMS = 10_000


@dataclass
class PortStats:
    received: int = 0
    foreign: int = 0  # from an address that is no known node's
    malformed: int = 0
    late: int = 0  # behind its stream's newest frame, or a duplicate
    unwanted: int = 0  # from a node the stream is not taken from (a standby origin)
    sent: int = 0
    send_errors: int = 0


class MediaPort(asyncio.DatagramProtocol):
    """One node's UDP port for the cascade's media.

    ``on_frame(ssrc, payload, source, now)`` gets each well-formed frame from
    a host ``trusted`` allows, once, in order: a late or repeated frame is dropped.
    ``wanted(ssrc, source)``, if given, drops a stream's frames from a source
    it does not want before they count as seen: an edge takes an event's mix
    from the active origin only, and the standby's copy of a frame must not
    make the active one's look repeated.

    ``sending`` off, nothing leaves (a standby origin mixes, but sends nothing).
    """

    def __init__(
        self,
        on_frame: Callable[[int, bytes, Address, float], None],
        trusted: Callable[[str], bool],
        clock: Callable[[], float],
        wanted: Callable[[int, Address], bool] | None = None,
    ) -> None:
        self.on_frame = on_frame
        self.trusted = trusted
        self.clock = clock
        self.wanted = wanted
        self.sending = True
        self.stats = PortStats()
        self.transport: asyncio.DatagramTransport | None = None
        self.address: Address = ("", 0)
        self._newest: dict[int, int] = {}  # SSRC → the newest sequence number seen

    async def open(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, 0))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.address = transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass, but is one.
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host = str(addr[0])
        if not self.trusted(host):
            self.stats.foreign += 1
            return
        frame = parse_frame(data)
        if frame is None:
            self.stats.malformed += 1
            return
        ssrc, seq, payload = frame
        source = (host, int(str(addr[1])))
        if self.wanted is not None and not self.wanted(ssrc, source):
            self.stats.unwanted += 1
            return
        newest = self._newest.get(ssrc)
        if newest is not None and -MAX_MISORDER < seq_diff(seq, newest) <= 0:
            self.stats.late += 1
            return
        if len(self._newest) >= MAX_STREAMS and ssrc not in self._newest:
            self._newest.clear()
        self._newest[ssrc] = seq
        self.stats.received += 1
        self.on_frame(ssrc, payload, source, self.clock())

    def forget(self, ssrc: int) -> None:
        """Take the stream's next frame whatever its number (its sender changed)."""
        self._newest.pop(ssrc, None)

    def send(self, packet: bytes, target: Address) -> None:
        if self.transport is None or not self.sending:
            return
        try:
            self.transport.sendto(packet, target)
            self.stats.sent += 1
        except OSError:
            self.stats.send_errors += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class MixFeed:
    """The origin's tap on one event's mix: once per subscribed edge, per tick.

    The frames are numbered on the wall clock's 20 ms grid (``wall``), not by
    this process's ticks: an active and a standby origin number the same
    moment alike, so an edge that switches from one to the other drops what
    it played already and skips nothing (within a frame: the two ticks are
    not in phase).
    """

    def __init__(
        self,
        event_id: int,
        port: MediaPort,
        clock: Callable[[], float],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.event_id = event_id
        self.port = port
        self.clock = clock
        self.wall = wall
        self.ssrc = mix_ssrc(event_id)
        self.edges: dict[str, tuple[Address, float]] = {}  # node → (address, last subscribed)
        self._offset: int | None = None  # grid number - tick number
        # The link is narrowband μ-law: the 16 kHz mix is brought down once, for every edge.
        self._encoder = codecs.encoder("PCMU")

    def number(self, frame_index: int) -> int:
        """The frame's number on the wall clock's grid: ticks since the epoch, 20 ms each.

        The offset is set once and kept while the ticks keep pace with the wall
        clock (jitter must not number two frames alike); set again if they drift
        apart by more than ``REGRID_FRAMES`` (a stall, the clock stepped).
        """
        grid = round(self.wall() / FRAME_SECONDS)
        if self._offset is None or abs(grid - (frame_index + self._offset)) > REGRID_FRAMES:
            self._offset = grid - frame_index
        return frame_index + self._offset

    def subscribe(self, node: str, address: Address, now: float) -> None:
        self.edges[node] = (address, now)

    def drop(self, node: str) -> None:
        self.edges.pop(node, None)

    def address(self, node: str) -> Address | None:
        found = self.edges.get(node)
        return found[0] if found is not None else None

    def push(self, frame_index: int, pcm: Pcm) -> None:
        """``media.conference.MixTap``: one frame of the mix, from the conference's tick."""
        if not self.edges:
            return
        now = self.clock()
        stale = [node for node, (_, seen) in self.edges.items() if now - seen > SUBSCRIPTION_TTL]
        for node in stale:
            log.info("event %d: %s went silent; its feed stops", self.event_id, node)
            del self.edges[node]
        number = self.number(frame_index)
        header = HEADER.pack(0x80, PCMU, number & 0xFFFF, (number * 160) & 0xFFFFFFFF, self.ssrc)
        packet = header + self._encoder.encode(pcm)
        for address, _ in self.edges.values():
            self.port.send(packet, address)


class RemoteLeg:
    """An edge's caller who may talk, as a leg of the origin's conference."""

    codec_name = "PCMU"

    def __init__(self, participant_id: str, port: MediaPort, target: Callable[[], Address | None]):
        self.participant_id = participant_id
        self.port = port
        self.target = target
        self.sender = RtpSender(PCMU, ssrc=line_ssrc(participant_id))
        self.frames: deque[bytes] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._last: Pcm | None = None
        # μ-law over the link, brought up to the 16 kHz mix.
        self._decoder = codecs.decoder("PCMU")

    def receive(self, payload: bytes) -> None:
        """A frame of the caller's audio, as the edge sent it."""
        self.frames.append(payload)

    def pull_frame(self, now: float) -> Pcm | None:
        if not self.frames:
            return None
        return self._decoder.decode(self.frames.popleft())

    def send_payload(self, payload: bytes, now: float) -> None:
        target = self.target()
        if target is not None:
            self.port.send(self.sender.frame(payload), target)


class Uplink:
    """An edge's callers' audio to the origins, one RTP stream per caller who may talk.

    The same packet goes to every origin in ``origins``: the active one and a
    hot standby mix alike.
    """

    def __init__(self, port: MediaPort) -> None:
        self.port = port
        self.origins: list[Address] = []
        self._senders: dict[str, RtpSender] = {}
        self._encoders: dict[str, codecs.FrameEncoder] = {}

    def send(self, participant_id: str, pcm: Pcm) -> None:
        if not self.origins:
            return
        sender = self._senders.get(participant_id)
        if sender is None:
            sender = self._senders[participant_id] = RtpSender(PCMU, ssrc=line_ssrc(participant_id))
        encoder = self._encoders.get(participant_id)
        if encoder is None:
            encoder = self._encoders[participant_id] = codecs.encoder("PCMU")
        packet = sender.frame(encoder.encode(np.asarray(pcm, dtype=np.int16)))
        for origin in self.origins:
            self.port.send(packet, origin)

    def forget(self, participant_id: str) -> None:
        self._senders.pop(participant_id, None)
        self._encoders.pop(participant_id, None)
