"""A leg's RTCP: reports sent where the SDP says (rtcp-mux or port + 1), the peer's read."""

from __future__ import annotations

from callbridge.bridge.leg import CallLeg
from callbridge.media.prompts import PromptPlayer, default_library
from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.rtcp import ReportBlock, read_reports, receiver_report
from callbridge.sip.sdp import SdpSession

PHONE = ("127.0.0.1", 40000)
OFFER = (
    b"v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
)


def leg(offer: bytes) -> tuple[CallLeg, list[tuple[bytes, tuple[str, int]]], bytes]:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    negotiated = SdpSession("127.0.0.1").negotiate(offer, 20000)
    made = CallLeg(
        call_id="call", dialled=None, caller="caller", source=PHONE, negotiated=negotiated,
        local_port=20000, send=lambda data, addr: sent.append((data, addr)),
        prompt_player=PromptPlayer(default_library()), now=0.0,
    )  # fmt: skip
    return made, sent, negotiated.answer


def test_rtcp_mux_offered_is_taken_and_reports_go_and_come_on_the_rtp_port() -> None:
    made, sent, answer = leg(OFFER + b"a=rtcp-mux\r\n")
    assert b"a=rtcp-mux" in answer
    for i in range(100):  # the phone's audio, two packets lost
        if i not in (40, 41):
            made.receive(bytes(RtpPacket(0, i, 160 * i, 0x5678, b"\xff" * 160)), PHONE, 0.02 * i)
    made.send_rtcp(10.0, 1_800_000_000.0)
    [(report, to)] = sent
    assert to == PHONE
    [ours] = read_reports(report)
    assert ours.ssrc == made.sender.ssrc and ours.ntp is not None
    [block] = ours.blocks
    assert (block.ssrc, block.cumulative_lost) == (0x5678, 2)
    # The phone's RR about our stream: its view of our loss and jitter.
    theirs = receiver_report(0x5678, (ReportBlock(made.sender.ssrc, 64, 3, 100, 80, 0, 0),))
    made.receive(theirs, PHONE, 10.1)
    assert made.rtcp.peer is not None
    assert made.rtcp.peer.fraction_lost == 0.25 and made.rtcp.peer.jitter_ms == 10.0
    # RTCP from a stranger is not read.
    made.receive_rtcp(theirs, ("192.0.2.66", 40001), 10.2)
    assert made.rtcp.received == 1


def test_without_mux_reports_go_to_port_plus_one_or_where_a_rtcp_says() -> None:
    made, sent, answer = leg(OFFER)
    assert b"rtcp-mux" not in answer
    out: list[tuple[bytes, tuple[str, int]]] = []
    made.rtcp_send = lambda data, addr: out.append((data, addr))
    made.send_rtcp(6.0, 1_800_000_000.0)
    assert sent == [] and out[0][1] == ("127.0.0.1", 40001)
    made, _, _ = leg(OFFER + b"a=rtcp:40011 IN IP4 127.0.0.1\r\n")
    made.rtcp_send = lambda data, addr: out.append((data, addr))
    made.send_rtcp(6.0, 1_800_000_000.0)
    assert out[1][1] == ("127.0.0.1", 40011)
