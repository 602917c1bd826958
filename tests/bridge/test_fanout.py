"""The fan-out with real legs on real sockets: what each caller's phone receives."""

from __future__ import annotations

import asyncio
import itertools
import socket
from datetime import UTC, datetime

import numpy as np

from callbridge.bridge.batch_send import BatchSender
from callbridge.bridge.fanout import FanOut
from callbridge.bridge.leg import CallLeg
from callbridge.bridge.rtp_transport import BatchReader, RtpPortPool, RtpSocket
from callbridge.media.conference import Conference
from callbridge.media.mixer import FRAME_SAMPLES
from callbridge.media.prompts import PromptPlayer, default_library
from callbridge.rtp.codecs import encoder
from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.srtp import SrtpContext
from callbridge.sip.crypto import CryptoAttribute
from callbridge.sip.sdp import SdpSession, SrtpPolicy

NOW = datetime(2026, 11, 25, 21, 30, tzinfo=UTC)


def offer(port: int, codec: int = 0) -> bytes:
    name = {0: "PCMU", 8: "PCMA"}[codec]
    return (
        "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {codec} 101\r\na=rtpmap:{codec} {name}/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
    ).encode()


class Phone:
    """The far end of one leg: a socket that keeps what it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def packets(self) -> list[RtpPacket]:
        received = []
        while True:
            try:
                received.append(RtpPacket.parse(self.sock.recv(2048)))
            except BlockingIOError:
                return received


def leg_for(
    phone: Phone, pool: RtpPortPool, loop: asyncio.AbstractEventLoop, codec: int = 0
) -> CallLeg:
    sock, port = pool.bind("127.0.0.1")
    rtp = RtpSocket(sock, lambda data, addr, now: None, loop, BatchReader())
    negotiated = SdpSession("127.0.0.1").negotiate(offer(phone.port, codec), port)
    leg = CallLeg(
        call_id=f"call-{port}",
        dialled=None,
        caller=f"caller {port}",
        source=("127.0.0.1", phone.port),
        negotiated=negotiated,
        local_port=port,
        send=rtp.sendto,
        prompt_player=PromptPlayer(default_library()),
        now=0.0,
        rtp=rtp,
    )
    rtp.handler = leg.receive
    return leg


def hang_up(legs: list[CallLeg], phones: list[Phone]) -> None:
    """Close every leg's socket (closing twice is harmless) and every phone."""
    for leg in legs:
        if leg.rtp is not None:
            leg.rtp.close()
    for phone in phones:
        phone.sock.close()


def assert_continuous(packets: list[RtpPacket]) -> None:
    """One stream as a phone wants it: one SSRC, +1 per packet, +160 per frame, one marker."""
    assert len({p.ssrc for p in packets}) == 1
    assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
    for before, after in itertools.pairwise(packets):
        assert after.sequence_number == (before.sequence_number + 1) % 65536
        assert after.timestamp == (before.timestamp + 160) % 2**32


def phone_band(codec: str, tone: np.ndarray, frames: int = 3) -> list[bytes]:
    """What a stream of ``tone`` frames of the mix is, encoded for a phone."""
    stream = encoder(codec)
    return [stream.encode(tone) for _ in range(frames)]


async def through_the_call(sender: BatchSender) -> None:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(43000, 43100)
    phones = [Phone() for _ in range(3)]
    legs = [
        leg_for(phone, pool, loop, codec) for phone, codec in zip(phones, (0, 0, 8), strict=True)
    ]
    tone = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    conference = Conference(1, encoder, audience=lambda: FanOut(sender))
    conference.start()
    speaker = conference.join(legs[0], True)
    listeners = [conference.join(leg, False) for leg in legs[1:]]
    for leg in legs:
        leg.participant = speaker if leg is legs[0] else listeners[legs.index(leg) - 1]
    legs[0].pull_frame = lambda now: tone  # type: ignore[method-assign]

    # The IVR first: two prompt frames sent by the leg itself.
    for _ in range(2):
        legs[1].send_pcm(None, 0.0)
    for _ in range(3):
        conference.tick(0.0)
    assert legs[1].fanout is not None and legs[2].fanout is legs[1].fanout
    # The moderator opens listener 1's line: it sends alone, then listens again.
    conference.set_may_talk(listeners[0].id, True)
    conference.tick(0.0)
    assert legs[1].fanout is None
    conference.set_may_talk(listeners[0].id, False)
    conference.whisper(listeners[1].id, iter([np.full(FRAME_SAMPLES, 3000, dtype=np.int16)]))
    for _ in range(2):
        conference.tick(0.0)
    await asyncio.sleep(0.05)

    first, second = phones[1].packets(), phones[2].packets()
    assert len(first) == 2 + 3 + 1 + 2
    assert len(second) == 3 + 1 + 2
    assert_continuous(first)
    assert_continuous(second)
    # The speaker's tone reached both listeners, each in their own codec (the
    # 16 kHz mix brought down to 8 kHz: the first frame rings in from silence).
    pcmu, pcma = phone_band("PCMU", tone), phone_band("PCMA", tone)
    assert first[2].payload == pcmu[0]
    assert second[0].payload_type == 8 and second[0].payload == pcma[0]
    # The prompt whispered to listener 2 is in their frame only.
    assert second[4].payload != pcma[2]
    assert first[6].payload == pcmu[2]
    # Counted once, wherever the packet was built.
    conference.end()
    assert legs[1].stats.packets_out == len(first)
    assert legs[1].sender.packets_sent == len(first)
    hang_up(legs, phones)


def test_numbering_is_continuous_through_prompts_an_open_line_and_a_whisper(
    sender: BatchSender,
) -> None:
    asyncio.run(through_the_call(sender))


async def held_and_closed(sender: BatchSender) -> None:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(43200, 43300)
    phones = [Phone() for _ in range(2)]
    legs = [leg_for(phone, pool, loop) for phone in phones]
    fanout = FanOut(sender)
    payload = {"PCMU": b"\x55" * 160}
    assert fanout.send(legs, payload, {}, 0.0) == 2
    # A re-INVITE puts leg 0 on hold: it leaves the batch, and the next send skips it.
    held = SdpSession("127.0.0.1").negotiate(
        offer(phones[0].port).replace(b"a=ptime:20", b"a=ptime:20\r\na=sendonly"),
        legs[0].local_port,
    )
    legs[0].update_media(held)
    assert legs[0].fanout is None and legs[0].on_hold
    assert fanout.send(legs, payload, {}, 0.0) == 1
    # A leg whose socket is closing leaves first; the batch never sends on a stale socket.
    legs[1].leave_fanout()
    assert legs[1].rtp is not None
    legs[1].rtp.close()
    assert fanout.send([legs[0]], payload, {}, 0.0) == 0
    await asyncio.sleep(0.05)
    assert len(phones[0].packets()) == 1
    assert len(phones[1].packets()) == 2
    hang_up(legs, phones)


def test_a_held_leg_is_skipped_and_a_leg_that_leaves_is_released(sender: BatchSender) -> None:
    asyncio.run(held_and_closed(sender))


async def joining_and_leaving(sender: BatchSender) -> None:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(43400, 43600)
    phones = [Phone() for _ in range(24)]
    legs = [leg_for(phone, pool, loop, 8 if i == 23 else 0) for i, phone in enumerate(phones)]
    fanout = FanOut(sender)
    payloads = {"PCMU": b"\x55" * 160, "PCMA": b"\xd5" * 160}
    # One by one, as callers join: each joins the batch without the others noticing.
    for count in range(1, 21):
        assert fanout.send(legs[:count], payloads, {}, 0.0) == count
    batch = fanout._batch
    # A caller in another codec: the rows are laid out afresh, numbering kept.
    assert fanout.send([*legs[:20], legs[23]], payloads, {}, 0.0) == 21
    assert fanout._batch is not batch
    # One leaves and hangs up (its socket closes), another joins: the dead row is never sent.
    assert legs[1].rtp is not None
    legs[1].leave_fanout()
    legs[1].rtp.close()
    assert fanout.send([legs[0], *legs[2:20], legs[23], legs[20]], payloads, {}, 0.0) == 21
    legs[20].leave_fanout()
    # Most leave: their rows die, then the batch is laid out again for the rest.
    remaining = [*legs[18:20], legs[23]]
    assert fanout.send(remaining, payloads, {}, 0.0) == 3
    assert fanout.send(remaining, payloads, {}, 0.0) == 3
    assert legs[0].fanout is None and legs[19].fanout is fanout
    assert len(fanout) == 3
    await asyncio.sleep(0.05)
    for index, phone in enumerate(phones):
        packets = phone.packets()
        expected = {1: 20, 18: 6, 19: 5, 20: 1, 21: 0, 22: 0, 23: 4}.get(index, 22 - index)
        assert len(packets) == expected, index
        if packets:
            assert_continuous(packets)
    # A leg that left got its numbering back and carries on from there.
    legs[0].send_payload(b"\xff" * 160, 0.0)
    await asyncio.sleep(0.05)
    after = phones[0].packets()
    assert len(after) == 1
    assert after[0].ssrc == legs[0].sender.ssrc
    assert legs[0].stats.packets_out == 22 + 1
    hang_up(legs, phones)


def test_callers_join_and_leave_one_at_a_time_without_a_break_in_anyones_stream(
    sender: BatchSender,
) -> None:
    asyncio.run(joining_and_leaving(sender))


def test_a_leg_hears_only_its_peer_and_latches_its_port() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        pool = RtpPortPool(43700, 43720)
        phone = Phone()
        leg = leg_for(phone, pool, loop)
        digits: list[str] = []
        leg.on_digit = lambda leg, digit, now: digits.append(digit)
        voice = RtpPacket(0, 1, 160, 7, b"\xff" * 160).serialize()
        key = RtpPacket(101, 2, 320, 7, bytes([1, 0x80 | 10, 0, 160])).serialize()
        try:
            leg.receive(voice, ("127.0.0.2", phone.port), 1.0)  # a stranger: dropped
            leg.receive(key, ("127.0.0.2", phone.port), 1.0)
            assert leg.stats.foreign == 2 and leg.stats.packets_in == 0 and digits == []
            assert leg.last_rx == 0.0 and leg.latched is None  # strangers keep nothing alive
            leg.receive(voice, ("127.0.0.1", phone.port + 2), 1.1)  # the peer: latched
            assert leg.latched == ("127.0.0.1", phone.port + 2) and leg.stats.packets_in == 1
            leg.receive(voice, ("127.0.0.1", phone.port), 1.2)  # same host, another port
            assert leg.stats.foreign == 3
            leg.receive(key, ("127.0.0.1", phone.port + 2), 1.3)
            assert digits == ["1"]
            # Silent for RELATCH_AFTER: another port of the peer's host may take over.
            leg.receive(voice, ("127.0.0.1", phone.port), 1.3 + 5.5)
            assert leg.latched == ("127.0.0.1", phone.port)
            # A re-INVITE: the first datagram after it latches again, at once.
            moved = SdpSession("127.0.0.1").negotiate(offer(phone.port + 4), leg.local_port)
            leg.update_media(moved)
            leg.receive(voice, ("127.0.0.1", phone.port + 4), 7.0)
            assert leg.latched == ("127.0.0.1", phone.port + 4)
            assert leg.stats.foreign == 3
        finally:
            hang_up([leg], [phone])

    asyncio.run(run())


def srtp_offer(port: int, key: bytes) -> bytes:
    crypto = CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", key).format()
    return offer(port).replace(b"RTP/AVP", b"RTP/SAVP") + f"a=crypto:{crypto}\r\n".encode()


async def srtp_with_plain(sender: BatchSender) -> None:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(43800, 43900)
    phones = [Phone() for _ in range(3)]
    legs = [leg_for(phone, pool, loop) for phone in phones[:2]]
    # The third phone offers SRTP with its key; the bridge answers with its own.
    phone_key = bytes(range(30))
    sock, port = pool.bind("127.0.0.1")
    rtp = RtpSocket(sock, lambda data, addr, now: None, loop, BatchReader())
    negotiated = SdpSession("127.0.0.1", srtp=SrtpPolicy.REQUIRED).negotiate(
        srtp_offer(phones[2].port, phone_key), port
    )
    assert negotiated.srtp is not None
    secure = CallLeg(
        "srtp", None, "srtp", ("127.0.0.1", phones[2].port), negotiated, port, rtp.sendto,
        PromptPlayer(default_library()), 0.0, rtp,
    )  # fmt: skip
    legs.append(secure)
    keys = negotiated.srtp
    far_end = SrtpContext(keys.suite, local=keys.remote, remote=keys.local)
    tone = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    conference = Conference(1, encoder, audience=lambda: FanOut(sender))
    conference.start()
    speaker = conference.join(legs[0], True)
    for leg in legs:
        leg.participant = speaker if leg is legs[0] else conference.join(leg, False)
    legs[0].pull_frame = lambda now: tone  # type: ignore[method-assign]
    try:
        for _ in range(3):
            conference.tick(0.0)
        # One batch for both listeners: the SRTP row is protected in place before the send.
        assert legs[1].fanout is not None and secure.fanout is legs[1].fanout
        await asyncio.sleep(0.05)
        pcmu = phone_band("PCMU", tone)
        assert [p.payload for p in phones[1].packets()] == pcmu
        wire = []
        while True:
            try:
                wire.append(phones[2].sock.recv(2048))
            except BlockingIOError:
                break
        assert len(wire) == 3
        # On the wire: no plain μ-law; under the far end's keys: the tone, numbered on.
        assert all(pcmu[2][:16] not in data for data in wire)
        opened = [far_end.unprotect(data) for data in wire]
        plain = [RtpPacket.parse(data) for data in opened if data is not None]
        assert [p.payload for p in plain] == pcmu
        assert_continuous(plain)
        # A farewell prompt, sent by the leg itself: numbered on, under the same key.
        secure.send_pcm(None, 0.5)
        await asyncio.sleep(0.05)
        last = far_end.unprotect(phones[2].sock.recv(2048))
        assert (
            last is not None
            and RtpPacket.parse(last).sequence_number == (plain[-1].sequence_number + 1) % 65536
        )
        # Its keys, protected by the far end, are heard; a wrong key's are dropped and counted.
        digits: list[str] = []
        secure.on_digit = lambda leg, digit, now: digits.append(digit)
        key = RtpPacket(101, 2, 320, 7, bytes([1, 0x80 | 10, 0, 160])).serialize()
        forger = SrtpContext(keys.suite, local=bytes(30), remote=bytes(30))
        peer = ("127.0.0.1", phones[2].port)
        secure.receive(forger.protect(key), peer, 1.0)
        # A forgery neither latches the port nor is heard.
        assert digits == [] and secure.stats.srtp_failed == 1 and secure.latched is None
        protected = far_end.protect(key)
        secure.receive(protected, peer, 1.1)
        assert digits == ["1"]
        secure.receive(protected, peer, 1.2)  # a replay: dropped too
        assert secure.stats.srtp_failed == 2
    finally:
        conference.end()
        hang_up(legs, phones)


def test_an_srtp_leg_gets_the_shared_frame_protected_under_its_own_key(
    sender: BatchSender,
) -> None:
    asyncio.run(srtp_with_plain(sender))
