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


def test_answers_to_an_invite_through_a_proxy_copy_its_record_route_in_order() -> None:
    routed = SIPP_INVITE.replace(
        b"Max-Forwards: 70\r\n",
        b"Record-Route: <sip:10.0.0.3;lr>\r\nRecord-Route: <sip:192.0.2.1;lr;ftag=x>\r\n"
        b"Max-Forwards: 69\r\n",
    )
    request = parse_message(routed)
    assert isinstance(request, SipRequest)
    for status in (180, 200):
        response = make_response(request, status, to_tag="abc")
        assert response.headers.get_all("Record-Route") == [
            "<sip:10.0.0.3;lr>",
            "<sip:192.0.2.1;lr;ftag=x>",
        ]
    # Refusals and the 100 establish no dialog: no route to copy.
    assert make_response(request, 486, to_tag="abc").headers.get_all("Record-Route") == []
    assert make_response(request, 100).headers.get_all("Record-Route") == []


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


# -- ASCII digits only (issue 11) -------------------------------------------------


@pytest.mark.parametrize("digit", ["²", "٣", "０", "𝟗"])
@pytest.mark.parametrize(
    ("field", "number"),
    [
        (b"Content-Length:   129", b"129"),
        (b"Via: SIP/2.0/UDP 127.0.0.1:5061", b"5061"),
        (b"Max-Forwards: 70", b"70"),
        (b"CSeq: 1 INVITE", b"1"),
        (b"INVITE sip:19135550123@127.0.0.1:5060 SIP", b"5060"),
    ],
)
def test_a_unicode_digit_is_a_400(field: bytes, number: bytes, digit: str) -> None:
    data = SIPP_INVITE.replace(field, field.replace(number, number[:-1] + digit.encode()), 1)
    assert data != SIPP_INVITE
    with pytest.raises(SipError) as error:
        parse_message(data)
    assert error.value.status == 400


def test_a_unicode_digit_in_a_status_code_is_not_a_response() -> None:
    response = make_response(parse_message(SIPP_INVITE), 200).serialize()  # type: ignore[arg-type]
    with pytest.raises(SipError) as error:
        parse_message(response.replace(b"SIP/2.0 200", "SIP/2.0 2٠0".encode()))
    assert error.value.status == 400


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (b"Content-Length: 4294967296", 513),
        (b"Content-Length: 12345678901", 400),  # more digits than any length we take
        (b"Content-Length: 70000", 513),
        (b"Content-Length: -1", 400),
        (b"Content-Length: 1" + b"0" * 5000, 400),  # int() would refuse it for its length
        (b"Content-Length: 0\r\nl: 0", 400),  # a duplicate, even an agreeing one
    ],
)
def test_content_length_bounds(header: bytes, status: int) -> None:
    data = SIPP_INVITE.replace(b"Content-Length:   129", header)
    with pytest.raises(SipError) as error:
        parse_message(data)
    assert error.value.status == status


def test_cseq_and_max_forwards_bounds() -> None:
    for old, new in [
        (b"CSeq: 1 INVITE", b"CSeq: 2147483648 INVITE"),
        (b"CSeq: 1 INVITE", b"CSeq: 12345678901 INVITE"),
        (b"Max-Forwards: 70", b"Max-Forwards: 256"),
        (b"Via: SIP/2.0/UDP 127.0.0.1:5061", b"Via: SIP/2.0/UDP 127.0.0.1:65536"),
    ]:
        with pytest.raises(SipError) as error:
            parse_message(SIPP_INVITE.replace(old, new))
        assert error.value.status == 400, new


# -- the TCP framer ------------------------------------------------------------------


def _with_length(first: bytes, where: int) -> bytes:
    """SIPP_INVITE with its Content-Length line spelt ``first`` and moved to header ``where``."""
    head, _, body = SIPP_INVITE.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Content-Length")]
    lines.insert(where, first + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.mark.parametrize("where", [1, 4, 9, 10])
@pytest.mark.parametrize(
    "spelling",
    [b"Content-Length: ", b"content-length:", b"CONTENT-LENGTH \t: ", b"l: ", b"L:", b"l:\r\n "],
)
def test_framer_finds_content_length_anywhere(where: int, spelling: bytes) -> None:
    message = _with_length(spelling, where)
    stream = message + b"\r\n" + OPTIONS_WITH_BODY
    for step in (len(stream), 1, 5):
        framer = StreamFramer()
        messages: list[bytes] = []
        for i in range(0, len(stream), step):
            messages += framer.feed(stream[i : i + step])
        assert messages == [message, OPTIONS_WITH_BODY]
        parsed = parse_message(messages[0], stream=True)
        assert len(parsed.body) == 129


OPTIONS_WITH_BODY = (
    b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nl: 4\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\r\nbody"
)


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Length: 129\r\nl: 0",  # conflicting
        b"Content-Length: 129\r\ncontent-length: 129",  # repeated
        "Content-Length: 1٢9".encode(),
        "Content-Length: 12²".encode(),
        b"Content-Length: 12 9",
        b"Content-Length: 0x81",
        b"Content-Length: 99999",
        b"X-Content-Length: 129",  # not a Content-Length at all: none is missing
    ],
)
def test_framer_refuses_a_bad_content_length(header: bytes) -> None:
    data = SIPP_INVITE.replace(b"Content-Length:   129", header)
    with pytest.raises(SipError):
        StreamFramer().feed(data)


def test_framer_buffer_is_capped() -> None:
    framer = StreamFramer()
    with pytest.raises(SipError) as error:
        for _ in range(100):
            framer.feed(b"X" * 1000)  # no blank line ever comes
    assert error.value.status == 513
    with pytest.raises(SipError):
        StreamFramer().feed(b"\r\n" * 70000)  # one chunk past the buffer's bound


def test_framer_keeps_alive_and_waits_for_the_body() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n\r\n") == []
    assert framer.feed(SIPP_INVITE[:-10]) == []
    assert framer.feed(SIPP_INVITE[-10:] + b"\r\n") == [SIPP_INVITE]
    assert framer.feed(OPTIONS_WITH_BODY[:-1]) == []
    assert framer.feed(OPTIONS_WITH_BODY[-1:]) == [OPTIONS_WITH_BODY]
