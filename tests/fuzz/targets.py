"""The parsers a stranger can reach, each with valid samples and the one error it may raise.

Shared by the short hypothesis run (``tests/fuzz/test_parsers.py``) and the
long one (``bench/fuzz.py``). A target's ``parse`` takes raw bytes as they
arrive (a datagram, a TCP chunk run, a request body, a playlist, a query
string), drives the parser and whatever the caller does next with its
result, and either returns True (accepted) or lets ``errors`` out
(rejected). Anything else escaping is a crash: the defect these tests hunt.
"""

from __future__ import annotations

import itertools
import random
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callbridge.rtp.dtmf import DtmfError, DtmfReceiver, DtmfSender, TelephoneEvent
from callbridge.rtp.packet import RtcpError, RtpError, RtpExtension, RtpPacket, parse_rtcp
from callbridge.sip.errors import SipError
from callbridge.sip.message import (
    NameAddr,
    SipRequest,
    SipUri,
    StreamFramer,
    parse_message,
)
from callbridge.sip.sdp import SdpSession
from callbridge.webcast.playlist import (
    BlockingRequestError,
    MediaPlaylist,
    Part,
    PartialSegment,
    PlaylistError,
    Segment,
    blocking_decision,
    parse,
    parse_blocking_query,
    render,
)

TORTURE = Path(__file__).resolve().parent.parent / "sip" / "data" / "torture"

# -- samples ------------------------------------------------------------------

OFFER = (
    b"v=0\r\n"
    b"o=analyst 2890844526 2890844526 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)
BARESIP_OFFER = (
    b"v=0\r\no=- 1411112 3426226 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10004 RTP/AVP 8 0 96\r\nb=AS:64\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"
    b"a=sendrecv\r\na=label:1\r\na=ssrc:2238301235 cname:x\r\na=rtcp-rsize\r\n"
)
IPV6_OFFER = (
    b"v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\nm=audio 30000/2 RTP/AVP 18 0 101\r\n"
    b"c=IN IP6 ::1\r\na=rtpmap:101 telephone-event/8000/1\r\na=ptime:30\r\na=recvonly\r\n"
)
SDP_SAMPLES = (OFFER, BARESIP_OFFER, IPV6_OFFER)


def _invite(body: bytes, length_header: bytes = b"Content-Length: ") -> bytes:
    return (
        b"INVITE sip:19135550123@127.0.0.1:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2851-1-0;rport\r\n"
        b"From: sipp <sip:sipp@127.0.0.1:5061>;tag=2851SIPpTag001\r\n"
        b"To: <sip:19135550123@127.0.0.1:5060>\r\n"
        b"Call-ID: 1-2851@127.0.0.1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Contact: sip:sipp@127.0.0.1:5061\r\n"
        b"Max-Forwards: 70\r\n"
        b"Content-Type: application/sdp\r\n"
        + length_header
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


SIPP_INVITE = _invite(OFFER)
OPTIONS = (
    b"OPTIONS sip:19135550123@127.0.0.1:5060 SIP/2.0\r\n"
    b"v: SIP/2.0/TCP [::1]:5070;branch=z9hG4bKopt1\r\n"
    b"l: 0\r\n"
    b"f: <sip:a@[::1]:5070>;tag=1\r\nt: <sip:b@127.0.0.1>\r\ni: opt-1\r\nCSeq: 7 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n\r\n"
)
OK_RESPONSE = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbye1;received=127.0.0.1;rport=5060\r\n"
    b"From: <sip:19135550123@127.0.0.1>;tag=cb1\r\nTo: <sip:analyst@127.0.0.1:5070>;tag=x\r\n"
    b"Call-ID: bye-1@127.0.0.1\r\nCSeq: 2 BYE\r\ncontent-length: 0\r\n\r\n"
)
# The Content-Length first, in the middle and folded: the framer must find each.
LENGTH_FIRST = (
    b"BYE sip:cb@127.0.0.1:5060 SIP/2.0\r\nContent-Length: 0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKb2\r\nFrom: <sip:a@h>;tag=1\r\n"
    b"To: <sip:b@h>;tag=2\r\nCall-ID: c2\r\nCSeq: 3 BYE\r\n\r\n"
)
LENGTH_FOLDED = _invite(BARESIP_OFFER, b"X-Early: 1\r\nCONTENT-LENGTH:\r\n ")


def _torture() -> tuple[bytes, ...]:
    return tuple(path.read_bytes().replace(b"{n}", b"1") for path in sorted(TORTURE.glob("*.sip")))


SIP_SAMPLES = (SIPP_INVITE, OPTIONS, OK_RESPONSE, LENGTH_FIRST, LENGTH_FOLDED, *_torture())
STREAM_SAMPLES = (
    SIPP_INVITE + b"\r\n\r\n" + OPTIONS,
    b"\r\n\r\n" + LENGTH_FIRST + LENGTH_FOLDED,
    OK_RESPONSE + SIPP_INVITE + b"\r\n",
    OPTIONS,
    LENGTH_FOLDED,
)


def _rtp_samples() -> tuple[bytes, ...]:
    plain = RtpPacket(0, 4660, 160, 0xDEADBEEF, bytes(range(160))).serialize()
    rich = RtpPacket(
        8,
        65535,
        2**32 - 1,
        1,
        b"\xd5" * 80,
        marker=True,
        csrc=[1, 2, 3],
        padding=4,
        extension=RtpExtension(0xBEDE, b"\x10\xff\x00\x00"),
    ).serialize()
    keys = [p.serialize() for p in DtmfSender(0x1234).packets("5", 8000, 100, 60)]
    return (plain, rich, *keys[:2], keys[-1])


def _rtcp_samples() -> tuple[bytes, ...]:
    ssrc = 0x11223344
    report = struct.pack("!IIIIII", 0x55667788, 0x01000010, 1234, 0, 5, 0)
    sr = struct.pack("!BBHI", 0x81, 200, 12, ssrc) + struct.pack("!IIIII", 1, 2, 3, 4, 5) + report
    rr = struct.pack("!BBHI", 0x81, 201, 7, ssrc) + report
    sdes = struct.pack("!BBHI", 0x81, 202, 3, ssrc) + b"\x01\x03abc\x00\x00\x00"
    bye = struct.pack("!BBHI", 0x81, 203, 1, ssrc)
    empty_rr = struct.pack("!BBHI", 0x80, 201, 1, ssrc)
    return (sr + sdes, rr + sdes + bye, empty_rr, sr, struct.pack("!BBH", 0x80, 203, 0))


RTP_SAMPLES = _rtp_samples()
RTCP_SAMPLES = _rtcp_samples()
EVENT_SAMPLES = (
    TelephoneEvent(5, False, 10, 160).serialize(),
    TelephoneEvent(11, True, 10, 960).serialize(),
    TelephoneEvent(16, False, 0, 65535).serialize() + b"\x01\x02\x03\x04",
)

T0 = datetime(2026, 11, 24, 14, 0, 0, tzinfo=UTC)


def _live() -> MediaPlaylist:
    def parts(msn: int, count: int) -> tuple[Part, ...]:
        return tuple(Part(f"part{msn}.{i}.m4s", 0.32, i % 3 == 0) for i in range(count))

    return MediaPlaylist(
        target_duration=2,
        media_sequence=10,
        segments=tuple(
            Segment(f"seg{10 + i}.m4s", 1.92, parts(10 + i, 6), T0 + timedelta(seconds=1.92 * i))
            for i in range(3)
        ),
        map_uri="init.mp4",
        part_target=0.32,
        part_hold_back=0.96,
        can_block_reload=True,
        partial=PartialSegment(parts(13, 2), T0 + timedelta(seconds=6)),
        preload_hint="part13.2.m4s",
        independent_segments=True,
    )


LIVE = _live()
VOD = MediaPlaylist(
    target_duration=6,
    segments=tuple(Segment(f"s{i}.m4s", 5.5) for i in range(4)),
    playlist_type="VOD",
    ended=True,
)
PLAYLIST_SAMPLES = (render(LIVE).encode(), render(VOD).encode())
QUERY_SAMPLES = (b"12&3", b"12", b"&", b"13&0", b"0&", b"9&9")

UNICODE_DIGITS = ("²", "٣", "０", "𝟗", "¹", "৪", "⁵", "߀", "Ⅻ", "½")
INTERESTING_NUMBERS = (
    b"0",
    b"-1",
    b"65535",
    b"65536",
    b"2147483647",
    b"2147483648",
    b"4294967296",
    b"99999999999999999999",
    b"1" * 5000,
    b"0" * 12 + b"1",
    b"1e9",
    b"0x10",
    b" 1",
    b"1.5",
)

# -- what each parser's caller does -------------------------------------------


def sip_message(data: bytes) -> bool:
    """A datagram as the endpoint reads it, and the fields it then reads from it."""
    message = parse_message(data)
    message.cseq  # noqa: B018 - the endpoint reads it for every message
    for name in ("From", "To"):
        NameAddr.parse(message.headers.get(name) or "<sip:x@y>")
    if isinstance(message, SipRequest):
        message.top_via  # noqa: B018
        SipUri.parse(message.uri)
        contact = message.headers.get("Contact")
        if contact is not None:
            NameAddr.parse(contact)
    message.serialize()
    return True


def sdp_offer(data: bytes) -> bool:
    """An INVITE's body as the bridge answers it."""
    SdpSession("127.0.0.1", 1).negotiate(data, 20000)
    return True


def rtp_packet(data: bytes) -> bool:
    """A datagram on a leg's RTP port, parsed and, as a sender would, written back."""
    packet = RtpPacket.parse(data)
    if RtpPacket.parse(packet.serialize()) != packet:
        raise AssertionError("serialize(parse(data)) does not parse back to the same packet")
    return True


def rtcp_packet(data: bytes) -> bool:
    parse_rtcp(data)
    return True


_RECEIVER = DtmfReceiver()


def telephone_event(data: bytes) -> bool:
    """A telephone-event payload, parsed and fed to a leg's (long-lived) key receiver."""
    event = TelephoneEvent.parse(data)
    timestamp = int.from_bytes(data[-4:].rjust(4, b"\0"), "big")
    _RECEIVER.receive_payload(timestamp, data, ssrc=data[0] & 3)
    event.digit  # noqa: B018
    return True


def _chunks(data: bytes) -> list[bytes]:
    # The cuts follow from the data itself (the same input, the same cuts):
    # a few at random places, and every byte of one stretch on its own.
    rng = random.Random(len(data) * 31 + sum(data[:64]))
    cuts = {rng.randrange(len(data) + 1) for _ in range(6)}
    start = rng.randrange(len(data) + 1)
    cuts.update(range(start, min(len(data), start + 48)))
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def frame(chunks: Sequence[bytes]) -> tuple[list[bytes], bool]:
    """The messages a fresh framer cuts from ``chunks``, and whether it raised none."""
    framer = StreamFramer()
    messages: list[bytes] = []
    try:
        for chunk in chunks:
            messages += framer.feed(chunk)
    except SipError:
        return messages, False
    return messages, True


def tcp_framing(data: bytes) -> bool:
    """A TCP stream fed whole and in pieces: the same messages either way.

    Raises SipError when the framer refused the stream (fed either way).
    """
    whole, whole_ok = frame([data])
    pieces, pieces_ok = frame(_chunks(data))
    if whole_ok != pieces_ok or (whole_ok and pieces != whole):
        raise AssertionError(
            f"whole: {len(whole)} messages (refused: {not whole_ok}); "
            f"in pieces: {len(pieces)} messages (refused: {not pieces_ok})"
        )
    if not whole_ok:
        raise SipError(400, "stream refused")
    return True


def playlist(data: bytes) -> bool:
    parse(data.decode("utf-8", "replace"))
    return True


def blocking_query(data: bytes) -> bool:
    """``_HLS_msn`` and ``_HLS_part`` as the web app hands them over, then the decision."""
    text = data.decode("utf-8", "replace")
    msn, sep, part = text.partition("&")
    values = parse_blocking_query(msn or None, part if sep and part else None)
    blocking_decision(LIVE, *values)
    return True


@dataclass(frozen=True)
class Target:
    name: str
    parse: Callable[[bytes], bool]
    errors: tuple[type[Exception], ...]
    samples: tuple[bytes, ...]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("sip", sip_message, (SipError,), SIP_SAMPLES),
        Target("sdp", sdp_offer, (SipError,), SDP_SAMPLES),
        Target("rtp", rtp_packet, (RtpError,), RTP_SAMPLES),
        Target("rtcp", rtcp_packet, (RtcpError,), RTCP_SAMPLES),
        Target("rfc4733", telephone_event, (DtmfError,), EVENT_SAMPLES),
        Target("tcp-framing", tcp_framing, (SipError,), STREAM_SAMPLES),
        Target("playlist", playlist, (PlaylistError,), PLAYLIST_SAMPLES),
        Target("blocking-query", blocking_query, (BlockingRequestError,), QUERY_SAMPLES),
    )
}

# -- mutations ----------------------------------------------------------------


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _flip_bit(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]


def _set_byte(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    i = rng.randrange(len(data) + 1)
    value = rng.choice((0, 0x7F, 0x80, 0xFF, 0x0A, 0x0D, 0x20, 0x3A, rng.randrange(256)))
    return data[:i] + bytes([value]) + data[i + 1 :]


def _insert(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    i = rng.randrange(len(data) + 1)
    junk = rng.randbytes(rng.choice((1, 2, 4, 16)))
    return data[:i] + junk + data[i:]


def _delete(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.choice((1, 1, 2, 4, 16, 64)) :]


def _truncate(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _splice(data: bytes, rng: random.Random, samples: Sequence[bytes]) -> bytes:
    other = rng.choice(samples)
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


_DIGIT = re.compile(rb"[0-9]")
_DIGITS = re.compile(rb"[0-9]+")


def _find_from_random_place(
    pattern: re.Pattern[bytes], data: bytes, rng: random.Random
) -> re.Match[bytes] | None:
    start = rng.randrange(len(data) + 1)
    return pattern.search(data, start) or pattern.search(data)


def _unicode_digit(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    found = _find_from_random_place(_DIGIT, data, rng)
    if found is None:
        return data
    return data[: found.start()] + rng.choice(UNICODE_DIGITS).encode() + data[found.end() :]


def _number(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    # Replace a run of ASCII digits by a number at or past some bound.
    found = _find_from_random_place(_DIGITS, data, rng)
    if found is None:
        return data
    return data[: found.start()] + rng.choice(INTERESTING_NUMBERS) + data[found.end() :]


def _duplicate_line(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return b"\n".join(lines)


def _drop_line(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def _swap_lines(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _case(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    return data.upper() if rng.random() < 0.5 else data.lower()


MUTATIONS = (
    _flip_bit,
    _set_byte,
    _insert,
    _delete,
    _truncate,
    _splice,
    _unicode_digit,
    _unicode_digit,
    _number,
    _duplicate_line,
    _drop_line,
    _swap_lines,
    _case,
)


def mutate(data: bytes, rng: random.Random, samples: Sequence[bytes], limit: int = 70000) -> bytes:
    """``data`` after one to four mutations drawn from ``rng`` (deterministic for a seed)."""
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        data = rng.choice(MUTATIONS)(data, rng, samples)
    return data[:limit]
