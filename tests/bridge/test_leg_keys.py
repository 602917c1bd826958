"""A leg's keys from both paths: RFC 4733 events and in-band tones, each press counted once."""

from __future__ import annotations

import numpy as np

from callbridge.bridge.leg import CallLeg
from callbridge.media.conference import Participant
from callbridge.media.prompts import PromptPlayer, default_library
from callbridge.rtp.dtmf import DtmfSender
from callbridge.rtp.g711 import ulaw_encode
from callbridge.rtp.packet import RtpPacket
from callbridge.sip.sdp import SdpSession
from tests.support.pcap import keypad_tone

PHONE = ("127.0.0.1", 40000)
OFFER = (
    b"v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
)


def leg(inband: bool) -> tuple[CallLeg, list[str]]:
    keys: list[str] = []
    negotiated = SdpSession("127.0.0.1").negotiate(OFFER, 20000)
    made = CallLeg(
        call_id="call", dialled=None, caller="caller", source=PHONE, negotiated=negotiated,
        local_port=20000, send=lambda data, addr: None,
        prompt_player=PromptPlayer(default_library()), now=0.0, inband_dtmf=inband,
    )  # fmt: skip
    made.on_digit = lambda leg, digit, now: keys.append(digit)
    return made, keys


def press(code: str, both: bool, tones: bool = True) -> list[tuple[float, bytes]]:
    """A phone keying ``code``: 100 ms tones and 100 ms silence per key, each key also
    (when ``both``) as RFC 4733 events from the moment it goes down; (time, datagram)."""
    sender = DtmfSender(0x1234)
    out: list[tuple[float, bytes]] = []
    seq, ts, t = 100, 8000, 0.0
    for key in code:
        audio = keypad_tone(key, 0.1) if tones else np.zeros(800, np.int16)
        audio = np.concatenate([audio, np.zeros(800, np.int16)])
        if both:
            for n, event in enumerate(sender.packets(key, ts, 10_000 + seq, duration_ms=100)):
                out.append((t + min(n, 3) * 0.02, bytes(event)))
        for n in range(len(audio) // 160):
            frame = ulaw_encode(audio[n * 160 : (n + 1) * 160])
            out.append((t, bytes(RtpPacket(0, seq & 0xFFFF, ts, 0x5678, frame))))
            seq, ts, t = seq + 1, ts + 160, t + 0.02
    return sorted(out, key=lambda item: item[0])


def feed(made: CallLeg, stream: list[tuple[float, bytes]]) -> None:
    for at, data in stream:
        made.receive(data, PHONE, at)


def test_tones_alone_are_keys_when_the_trunk_sends_them() -> None:
    made, keys = leg(inband=True)
    feed(made, press("2580#", both=False))
    assert "".join(keys) == "2580#"
    assert made.stats.inband_keys == 5


def test_tones_are_not_listened_for_unless_asked() -> None:
    made, keys = leg(inband=False)
    feed(made, press("2580#", both=False))
    assert keys == []


def test_a_press_sent_both_ways_counts_once() -> None:
    made, keys = leg(inband=True)
    feed(made, press("11223#", both=True))
    assert "".join(keys) == "11223#"
    assert made.stats.merged_keys == 6


def test_rfc_4733_alone_still_counts_with_tones_listened_for() -> None:
    made, keys = leg(inband=True)
    feed(made, press("4711", both=True, tones=False))
    assert "".join(keys) == "4711"


def test_a_listener_keying_tones_is_never_quiet() -> None:
    """A quiet leg's audio is sampled by the kernel and skipped unread: its ``*1`` would be lost."""
    for inband, quiet in ((False, True), (True, False)):
        made, keys = leg(inband=inband)
        made.participant = Participant("p1", made, may_talk=False)
        assert made.quiet is quiet
    feed(made, press("*1", both=False))
    assert keys == ["*", "1"]
