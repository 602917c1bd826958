from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.sip.crypto import parse_crypto
from callbridge.sip.errors import SipError
from callbridge.sip.sdp import (
    NARROWBAND,
    Direction,
    SdpSession,
    SessionDescription,
    SrtpKeys,
    SrtpPolicy,
    SrtpRequired,
)
from tests.sip.uac import OFFER

BARESIP_OFFER = (
    b"v=0\r\no=- 1411112 3426226 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10004 RTP/AVP 8 0 96\r\nb=AS:64\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"
    b"a=sendrecv\r\na=label:1\r\na=ssrc:2238301235 cname:x\r\na=rtcp-rsize\r\n"
)


def test_answer_keeps_the_offerers_order_and_numbers() -> None:
    result = SdpSession("127.0.0.1", 1).negotiate(BARESIP_OFFER, 20000)
    assert (result.codec, result.payload_type, result.dtmf_payload_type) == ("PCMA", 8, 96)
    assert (result.remote_host, result.remote_port, result.ptime) == ("127.0.0.1", 10004, 20)
    assert b"m=audio 20000 RTP/AVP 8 96\r\n" in result.answer
    assert b"a=rtpmap:96 telephone-event/8000" in result.answer
    assert b"a=sendrecv" in result.answer


def test_version_rises_with_each_answer() -> None:
    session = SdpSession("127.0.0.1", 7)
    first = session.negotiate(OFFER.encode(), 20000).answer
    second = session.negotiate(OFFER.encode(), 20000).answer
    assert b"o=callbridge 7 8 " in first and b"o=callbridge 7 9 " in second


@pytest.mark.parametrize(
    ("change", "direction", "hold"),
    [
        (("a=sendrecv", "a=sendonly"), Direction.RECVONLY, True),
        (("a=sendrecv", "a=inactive"), Direction.INACTIVE, True),
        (("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"), Direction.RECVONLY, True),
        (("a=sendrecv", "a=recvonly"), Direction.SENDONLY, False),
    ],
)
def test_hold_is_mirrored(change: tuple[str, str], direction: Direction, hold: bool) -> None:
    offer = OFFER.replace(*change).encode()
    result = SdpSession("127.0.0.1").negotiate(offer, 20000)
    assert result.direction is direction
    assert result.on_hold is hold


def test_ptime_is_honoured() -> None:
    result = SdpSession("127.0.0.1").negotiate(OFFER.replace("ptime:20", "ptime:30").encode(), 1)
    assert result.ptime == 30


@pytest.mark.parametrize(
    ("offer", "status"),
    [
        (OFFER.replace("0 8 101", "18 101"), 488),
        (OFFER.replace("m=audio 40000 RTP/AVP", "m=video 40000 RTP/AVP"), 488),
        (OFFER.replace("RTP/AVP", "RTP/SAVP"), 488),
        (OFFER.replace("v=0", "v=1"), 400),
        (OFFER.replace("c=IN IP4 127.0.0.1\r\n", ""), 400),
    ],
)
def test_refusals(offer: str, status: int) -> None:
    with pytest.raises(SipError) as error:
        SdpSession("127.0.0.1").negotiate(offer.encode(), 20000)
    assert error.value.status == status


@given(st.binary(max_size=400))
def test_sdp_parser_returns_or_raises_sip_error(data: bytes) -> None:
    with contextlib.suppress(SipError):
        SessionDescription.parse(data)


# -- ASCII digits only (issue 11): the five places of the SDP parser ----------------


@pytest.mark.parametrize("digit", ["²", "٣", "０"])
@pytest.mark.parametrize(
    ("old", "new", "status"),
    [
        ("m=audio 40000 ", "m=audio 4000{d} ", 400),
        ("RTP/AVP 0 8 101", "RTP/AVP {d} 8 101", None),  # fmt: skipped, PCMA remains
        ("a=rtpmap:0 PCMU/8000", "a=rtpmap:{d} PCMU/8000", None),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap:101 telephone-event/800{d}", None),
        ("a=fmtp:101 0-16", "a=fmtp:10{d} 0-16", None),
        ("a=ptime:20", "a=ptime:2{d}", None),
    ],
)
def test_a_unicode_digit_is_refused_or_ignored(
    old: str, new: str, status: int | None, digit: str
) -> None:
    offer = OFFER.replace(old, new.format(d=digit)).encode()
    if status is None:
        result = SdpSession("127.0.0.1").negotiate(offer, 20000)
        assert result.codec in ("PCMU", "PCMA") and result.ptime == 20
    else:
        with pytest.raises(SipError) as error:
            SdpSession("127.0.0.1").negotiate(offer, 20000)
        assert error.value.status == status


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (("m=audio 40000", "m=audio 65536"), 400),
        (("m=audio 40000", "m=audio 4294967296"), 400),
        (("m=audio 40000", "m=audio -1"), 400),
        (("c=IN IP4 127.0.0.1", "c=IN IP4 stranger.example"), 488),
        (("c=IN IP4 127.0.0.1", "c=IN IP4 ::1"), 488),
        (("c=IN IP4 127.0.0.1", "c=IN IP4 127.0.0.٣"), 488),
    ],
)
def test_bounds_and_addresses(change: tuple[str, str], status: int) -> None:
    with pytest.raises(SipError) as error:
        SdpSession("127.0.0.1").negotiate(OFFER.replace(*change).encode(), 20000)
    assert error.value.status == status


def test_odd_but_valid_forms_are_read() -> None:
    offer = (
        OFFER.replace("m=audio 40000 RTP/AVP", "m=audio 40000/2 RTP/AVP")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0  PCMU/8000/1")
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 224.2.1.1/127")
    )
    result = SdpSession("127.0.0.1").negotiate(offer.encode(), 20000)
    assert (result.codec, result.remote_host, result.remote_port) == ("PCMU", "224.2.1.1", 40000)


SRTP_OFFER = BARESIP_OFFER.replace(b"RTP/AVP", b"RTP/SAVP") + (
    b"a=crypto:1 AEAD_AES_256_GCM inline:" + b"A" * 60 + b"\r\n"
    b"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"
    + base64.b64encode(bytes(range(30)))
    + b"|2^31\r\n"
)


def test_an_srtp_offer_is_answered_with_our_own_key_under_its_tag() -> None:
    session = SdpSession("127.0.0.1", 1, srtp=SrtpPolicy.OFFERED)
    result = session.negotiate(SRTP_OFFER, 20000)
    assert b"m=audio 20000 RTP/SAVP 8 96\r\n" in result.answer
    line = next(x for x in result.answer.split(b"\r\n") if x.startswith(b"a=crypto:"))
    ours = parse_crypto(line.removeprefix(b"a=crypto:").decode())
    assert (ours.tag, ours.suite) == (2, "AES_CM_128_HMAC_SHA1_80")
    assert result.srtp == SrtpKeys("AES_CM_128_HMAC_SHA1_80", ours.key, bytes(range(30)))
    # A re-offer keeps our key: a new one would restart our rollover counter.
    assert session.negotiate(SRTP_OFFER, 20000).srtp == result.srtp


@pytest.mark.parametrize(
    ("policy", "offer", "refusal"),
    [
        (SrtpPolicy.REQUIRED, BARESIP_OFFER, SrtpRequired),  # a downgrade: refused
        (SrtpPolicy.OFF, SRTP_OFFER, SipError),
        # SAVP without a key we can use.
        (SrtpPolicy.REQUIRED, BARESIP_OFFER.replace(b"RTP/AVP", b"RTP/SAVP"), SipError),
    ],
)
def test_srtp_policy_refusals_are_488(
    policy: SrtpPolicy, offer: bytes, refusal: type[SipError]
) -> None:
    with pytest.raises(refusal) as caught:
        SdpSession("127.0.0.1", 1, srtp=policy).negotiate(offer, 20000)
    assert caught.value.status == 488


def test_a_plain_offer_stays_plain_where_srtp_is_only_offered() -> None:
    result = SdpSession("127.0.0.1", 1, srtp=SrtpPolicy.OFFERED).negotiate(BARESIP_OFFER, 20000)
    assert result.srtp is None and b"RTP/AVP" in result.answer and b"a=crypto" not in result.answer


def _callee_answer(offer: bytes, protocol: str, crypto: str | None) -> bytes:
    """A callee's answer to ``offer`` in ``protocol``, with ``crypto`` (tag suite inline:key)."""
    lines = [
        "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
        f"m=audio 30000 {protocol} 0 101", "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
    ]  # fmt: skip
    if crypto is not None:
        lines.append(f"a=crypto:{crypto}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _offered_key(offer: bytes) -> tuple[int, str, bytes]:
    line = next(x for x in offer.split(b"\r\n") if x.startswith(b"a=crypto:"))
    ours = parse_crypto(line.removeprefix(b"a=crypto:").decode())
    return ours.tag, ours.suite, ours.key


@pytest.mark.parametrize(
    ("policy", "protocol"),
    [(SrtpPolicy.REQUIRED, "RTP/SAVP"), (SrtpPolicy.OFFERED, "RTP/AVP"), (SrtpPolicy.OFF, "")],
)
def test_calls_we_place_offer_srtp_as_the_trunk_says(policy: SrtpPolicy, protocol: str) -> None:
    offer = SdpSession("127.0.0.1", 1, srtp=policy, codecs=NARROWBAND).offer(20000)
    if policy is SrtpPolicy.OFF:
        assert b"RTP/AVP 0 8 101" in offer and b"a=crypto" not in offer
        return
    assert f"m=audio 20000 {protocol} 0 8 101".encode() in offer
    tag, suite, key = _offered_key(offer)
    assert (tag, suite, len(key)) == (1, "AES_CM_128_HMAC_SHA1_80", 30)


def test_the_callees_srtp_answer_gives_both_keys_and_a_plain_one_is_refused_if_required() -> None:
    theirs = base64.b64encode(bytes(range(30))).decode()
    for policy, protocol in ((SrtpPolicy.REQUIRED, "RTP/SAVP"), (SrtpPolicy.OFFERED, "RTP/AVP")):
        session = SdpSession("127.0.0.1", 1, srtp=policy)
        _, suite, ours = _offered_key(session.offer(20000))
        answer = _callee_answer(b"", protocol, f"1 {suite} inline:{theirs}")
        assert session.negotiate(answer, 20000).srtp == SrtpKeys(suite, ours, bytes(range(30)))
    # Best effort: a plain answer is plain RTP; required: it is refused (a downgrade).
    offered = SdpSession("127.0.0.1", 1, srtp=SrtpPolicy.OFFERED)
    offered.offer(20000)
    assert offered.negotiate(_callee_answer(b"", "RTP/AVP", None), 20000).srtp is None
    required = SdpSession("127.0.0.1", 1, srtp=SrtpPolicy.REQUIRED)
    required.offer(20000)
    with pytest.raises(SrtpRequired):
        required.negotiate(_callee_answer(b"", "RTP/AVP", None), 20000)
    # A key under a tag or suite we did not offer: refused.
    for crypto in (f"2 AES_CM_128_HMAC_SHA1_80 inline:{theirs}",
                   f"1 AES_CM_128_HMAC_SHA1_32 inline:{theirs}"):  # fmt: skip
        session = SdpSession("127.0.0.1", 1, srtp=SrtpPolicy.REQUIRED)
        session.offer(20000)
        with pytest.raises(SipError) as caught:
            session.negotiate(_callee_answer(b"", "RTP/SAVP", crypto), 20000)
        assert caught.value.status == 488


# baresip with its g722 and opus modules loaded offers them after G.711.
WIDEBAND_OFFER = (
    b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10004 RTP/AVP 0 8 9 111 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:9 G722/8000\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1;sprop-stereo=1\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
)


def test_a_wideband_codec_is_taken_over_g711_offered_first() -> None:
    result = SdpSession("127.0.0.1", 1).negotiate(WIDEBAND_OFFER, 20000)
    # The offerer's first wideband codec: G.722, RTP clock 8000 (RFC 3551's quirk).
    assert (result.codec, result.payload_type, result.dtmf_payload_type) == ("G722", 9, 101)
    assert b"m=audio 20000 RTP/AVP 9 101\r\n" in result.answer
    assert b"a=rtpmap:9 G722/8000\r\n" in result.answer


def test_opus_is_answered_as_48000_over_2_and_mono_at_16_khz() -> None:
    offer = WIDEBAND_OFFER.replace(b"RTP/AVP 0 8 9 111 101", b"RTP/AVP 111 9 0 101")
    result = SdpSession("127.0.0.1", 1).negotiate(offer, 20000)
    assert (result.codec, result.payload_type) == ("opus", 111)
    assert b"a=rtpmap:111 opus/48000/2\r\n" in result.answer
    assert b"a=fmtp:111 maxplaybackrate=16000; sprop-maxcapturerate=16000;" in result.answer


def test_opus_at_another_clock_rate_is_not_opus() -> None:
    offer = WIDEBAND_OFFER.replace(b"opus/48000/2", b"opus/16000").replace(b" 0 8 9 ", b" ")
    with pytest.raises(SipError) as refused:
        SdpSession("127.0.0.1", 1).negotiate(offer, 20000)
    assert refused.value.status == 488


def test_a_narrowband_session_keeps_g711_when_wideband_is_offered() -> None:
    session = SdpSession("127.0.0.1", 1, codecs=("PCMU", "PCMA"))
    result = session.negotiate(WIDEBAND_OFFER, 20000)
    assert (result.codec, result.payload_type) == ("PCMU", 0)
    with pytest.raises(ValueError, match="iLBC"):
        SdpSession("127.0.0.1", codecs=("iLBC",))


def test_g722_by_its_static_payload_type_alone() -> None:
    offer = WIDEBAND_OFFER.replace(b"a=rtpmap:9 G722/8000\r\n", b"")
    assert SdpSession("127.0.0.1").negotiate(offer, 20000).codec == "G722"


def test_the_sdp_and_rtp_codec_tables_agree() -> None:
    from callbridge.rtp import codecs
    from callbridge.sip import sdp

    assert set(sdp.FORMATS) == set(codecs.FORMATS)
    for key, fmt in sdp.FORMATS.items():
        coded = codecs.FORMATS[key]
        assert (fmt.name, fmt.clock_rate, fmt.channels) == (
            coded.name,
            coded.clock_rate,
            coded.channels,
        )
        assert fmt.wideband == coded.wideband
        assert fmt.rtpmap() == coded.rtpmap()


def test_a_call_we_place_offers_its_trunks_codecs_wideband_first() -> None:
    assert b"RTP/AVP 0 8 101\r\n" in SdpSession("127.0.0.1", 1, codecs=NARROWBAND).offer(20000)
    session = SdpSession("127.0.0.1", 1, codecs=("PCMU", "opus", "G722"))
    offer = session.offer(20000)
    assert b"m=audio 20000 RTP/AVP 111 9 0 101\r\n" in offer
    assert b"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 maxplaybackrate=16000;" in offer
    assert b"a=rtpmap:9 G722/8000\r\n" in offer and b"a=rtpmap:8 " not in offer
    # The callee takes G.722: the call is wideband.
    answer = offer.replace(b"RTP/AVP 111 9 0 101", b"RTP/AVP 9 101")
    assert session.negotiate(answer, 20000).codec == "G722"
