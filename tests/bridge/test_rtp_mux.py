"""One media port for every call: real UDP sockets on loopback around the mux."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

import pytest

from callbridge.bridge import rtp_mux
from callbridge.bridge.rtp_mux import SEND_BATCH, MuxedRtp, RtpMux, sockaddr
from callbridge.rtp.packet import RtpPacket

Address = tuple[str, int]

pytestmark = pytest.mark.skipif(
    rtp_mux._sendmmsg is None, reason="recvmmsg/sendmmsg are Linux only"
)


@dataclass(eq=False)
class Caller:
    """A leg as the mux sees it, with a real socket of its own on the far side."""

    sock: socket.socket
    quiet: bool = False
    audio_payload_type: int = 0
    received: list[bytes] = field(default_factory=list)
    sources: list[Address] = field(default_factory=list)
    counted: int = 0

    @property
    def address(self) -> Address:
        name: Address = self.sock.getsockname()[:2]
        return name

    def receive(self, data: bytes, addr: Address, now: float) -> None:
        self.sources.append(addr)
        self.received.append(data)

    def heard(self, packets: int, now: float) -> None:
        self.counted += packets


def udp(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    return sock


def rtp(payload_type: int, seq: int) -> bytes:
    return RtpPacket(payload_type, seq, seq * 160, 7, b"\xff" * 160).serialize()


def run(body: object) -> None:
    asyncio.run(body)  # type: ignore[arg-type]


def test_packets_go_to_the_caller_they_came_from_and_quiet_audio_is_only_counted() -> None:
    async def body() -> None:
        mux = RtpMux(udp(), asyncio.get_running_loop())
        speaker, listener = Caller(udp()), Caller(udp(), quiet=True)
        for caller in (speaker, listener):
            MuxedRtp(mux, caller, caller.address)
        target = ("127.0.0.1", mux.port)
        for seq in range(5):
            speaker.sock.sendto(rtp(0, seq), target)
            listener.sock.sendto(rtp(0, 100 + seq), target)
        listener.sock.sendto(rtp(101, 200), target)  # a key (*1): read even from a listener
        await asyncio.sleep(0.05)
        mux.drain(1.0)
        assert [RtpPacket.parse(d).sequence_number for d in speaker.received] == list(range(5))
        assert listener.counted == 5
        assert [RtpPacket.parse(d).payload_type for d in listener.received] == [101]
        assert set(speaker.sources) == {speaker.address}
        assert mux.strays == 0
        mux.close()

    run(body())


def test_a_stranger_is_dropped_and_an_asymmetric_caller_latched_only_when_unambiguous() -> None:
    async def body() -> None:
        mux = RtpMux(udp(), asyncio.get_running_loop())
        target = ("127.0.0.1", mux.port)
        first, second = Caller(udp()), Caller(udp())
        # Both offered addresses that never send: their RTP comes from elsewhere.
        first_leg = MuxedRtp(mux, first, ("127.0.0.1", 9))
        MuxedRtp(mux, second, ("127.0.0.1", 11))
        stranger = udp()
        stranger.sendto(rtp(0, 1), target)
        await asyncio.sleep(0.05)
        mux.drain(1.0)
        assert mux.strays == 1  # two callers from that host not heard yet: no guessing
        assert first.received == second.received == []

        first_leg.close()  # one candidate left: the stranger is that caller
        stranger.sendto(rtp(0, 2), target)
        await asyncio.sleep(0.05)
        mux.drain(1.0)
        assert [RtpPacket.parse(d).sequence_number for d in second.received] == [2]
        assert second.sources == [stranger.getsockname()]
        mux.close()

    run(body())


def test_everything_queued_in_one_callback_goes_out_in_order() -> None:
    async def body() -> None:
        mux = RtpMux(udp(), asyncio.get_running_loop())
        far = [udp() for _ in range(3)]
        frames = SEND_BATCH * 2 + 10  # more than one sendmmsg
        for seq in range(frames):
            mux.sendto(rtp(0, seq), far[seq % 3].getsockname())
        await asyncio.sleep(0.05)  # the flush runs after this callback
        for index, sock in enumerate(far):
            sock.setblocking(False)
            got = []
            while True:
                try:
                    data, source = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                assert source[1] == mux.port  # sent from the port every SDP answer names
                got.append(RtpPacket.parse(data).sequence_number)
            assert got == list(range(index, frames, 3))
        assert mux.dropped == 0
        mux.sendto(b"\x80" * 5000, far[0].getsockname())  # longer than a datagram we send
        assert mux.dropped == 1
        mux.close()

    run(body())


def test_a_re_invite_moves_the_caller() -> None:
    async def body() -> None:
        mux = RtpMux(udp(), asyncio.get_running_loop())
        caller = Caller(udp())
        leg = MuxedRtp(mux, caller, ("127.0.0.1", 9))
        moved = udp()
        leg.moved(moved.getsockname())
        caller.sock = moved
        moved.sendto(rtp(0, 1), ("127.0.0.1", mux.port))
        await asyncio.sleep(0.05)
        mux.drain(1.0)
        assert len(caller.received) == 1
        mux.close()

    run(body())


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_key_is_the_name_the_kernel_writes(host: str) -> None:
    try:
        receiver, sender = udp(host), udp(host)
    except OSError:
        pytest.skip(f"no {host} here")

    async def body() -> None:
        mux = RtpMux(receiver, asyncio.get_running_loop())
        caller = Caller(sender)
        MuxedRtp(mux, caller, caller.address)
        sender.sendto(rtp(0, 1), receiver.getsockname()[:2])
        await asyncio.sleep(0.05)
        mux.drain(1.0)
        assert len(caller.received) == 1 and mux.strays == 0
        assert sockaddr(caller.address) in mux._peers
        mux.close()

    run(body())
