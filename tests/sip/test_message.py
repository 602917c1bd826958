from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.sip.errors import SipError
from callbridge.sip.message import (
    Headers,
    NameAddr,
    SipRequest,
    SipUri,
    StreamFramer,
    Via,
    make_response,
    parse_message,
)
from tests.sip.uac import Uac

# An INVITE as sipp's stock uac scenario sends it (addresses changed).
SIPP_INVITE = (
    b"INVITE sip:19135550123@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2851-1-0\r\n"
    b"From: sipp <sip:sipp@127.0.0.1:5061>;tag=2851SIPpTag001\r\n"
    b"To: <sip:19135550123@127.0.0.1:5060>\r\n"
    b"Call-ID: 1-2851@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: sip:sipp@127.0.0.1:5061\r\n"
    b"Max-Forwards: 70\r\n"
    b"Subject: Performance Test\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length:   129\r\n\r\n"
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def test_parse_sipp_invite() -> None:
    message = parse_message(SIPP_INVITE)
    assert isinstance(message, SipRequest)
    assert message.method == "INVITE"
    assert message.cseq == (1, "INVITE")
    assert message.top_via.branch == "z9hG4bK-2851-1-0"
    assert message.top_via.port == 5061
    assert len(message.body) == 129
    contact = NameAddr.parse(message.headers.get("Contact") or "")
    assert contact.uri.host == "127.0.0.1" and contact.uri.port == 5061
    assert NameAddr.parse(message.headers.get("From") or "").tag == "2851SIPpTag001"


def test_serialize_round_trip() -> None:
    message = parse_message(SIPP_INVITE)
    again = parse_message(message.serialize())
    assert isinstance(again, SipRequest)
    assert again.body == message.body
    assert list(again.headers) == list(message.headers)


def test_list_headers_split_outside_quotes_and_brackets() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")])
    headers.add("Contact", '"Doe, John" <sip:j@x;a=b,c>, <sip:k@y>')
    assert len(headers.get_all("via")) == 2
    assert headers.get_all("m") == ['"Doe, John" <sip:j@x;a=b,c>', "<sip:k@y>"]


def test_uris() -> None:
    uri = SipUri.parse("sip:+19135550123@[::1]:5070;user=phone;transport=tcp")
    assert (uri.user, uri.host, uri.port) == ("+19135550123", "[::1]", 5070)
    assert uri.params == {"user": "phone", "transport": "tcp"}
    assert SipUri.parse("tel:+19135550123").user == "+19135550123"
    with pytest.raises(SipError) as error:
        SipUri.parse("mailto:a@b")
    assert error.value.status == 416


def test_via_with_received_and_ipv6() -> None:
    via = Via.parse("SIP/2.0/TCP [2001:db8::1]:5080;branch=z9hG4bKx;received=1.2.3.4;rport")
    assert (via.transport, via.host, via.port) == ("TCP", "[2001:db8::1]", 5080)
    assert via.params["rport"] is None


def test_make_response_copies_what_it_must() -> None:
    request = parse_message(SIPP_INVITE)
    assert isinstance(request, SipRequest)
    response = make_response(request, 486, to_tag="abc")
    assert response.headers.get("Call-ID") == "1-2851@127.0.0.1"
    assert (response.headers.get("To") or "").endswith(";tag=abc")
    assert response.serialize().startswith(b"SIP/2.0 486 Busy Here\r\n")


def test_stream_framer_cuts_by_content_length() -> None:
    framer = StreamFramer()
    two = SIPP_INVITE + b"\r\n\r\n" + Uac().options()
    messages = []
    for i in range(0, len(two), 7):  # byte-wise arrival
        messages += framer.feed(two[i : i + 7])
    assert len(messages) == 2
    assert messages[0] == SIPP_INVITE


def test_stream_without_content_length_is_refused() -> None:
    with pytest.raises(SipError):
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n")


def _mutations() -> st.SearchStrategy[bytes]:
    base = SIPP_INVITE
    return st.builds(
        lambda start, length, junk: base[:start] + junk + base[start + length :],
        st.integers(0, len(base)),
        st.integers(0, 40),
        st.binary(max_size=30),
    )


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=600), _mutations()))
def test_parser_returns_a_message_or_raises_sip_error(data: bytes) -> None:
    with contextlib.suppress(SipError):
        parse_message(data)


@settings(max_examples=100)
@given(_mutations(), st.integers(1, 50))
def test_framer_fed_byte_by_byte_raises_only_sip_error(data: bytes, step: int) -> None:
    framer = StreamFramer()
    try:
        for i in range(0, len(data), step):
            for message in framer.feed(data[i : i + step]):
                with contextlib.suppress(SipError):
                    parse_message(message, stream=True)
    except SipError:
        pass
