"""SDP (RFC 4566) for one audio stream, and the offer/answer rules of RFC 3264.

We speak G.722 and Opus (wideband, 16 kHz) and G.711 (PCMU, PCMA, 8 kHz)
with RFC 4733 telephone-events (``rtp.codecs`` codes them; the two tables
name the same formats, which a test checks: sip and rtp are siblings). The answer
takes a wideband codec whenever one is offered (the conference mixes at
16 kHz: a G.711 caller would cut everyone they hear, and everyone would
hear them, to the phone band), and otherwise the offerer's first; it
honours the offerer's payload type numbers and ptime, mirrors its
direction, and an offer with no common codec is a 488.

SRTP with SDES keys (``sip.crypto``): an ``RTP/SAVP`` offer with a usable
``a=crypto`` line is answered ``RTP/SAVP`` with our own key under the
offer's tag, as the bridge's ``SrtpPolicy`` allows; an ``RTP/AVP`` offer to
a bridge that requires SRTP is refused with ``SrtpRequired`` (a 488).

Calls we place offer SRTP as the trunk's policy says: ``required`` offers
``RTP/SAVP`` with our key; ``offered`` offers ``RTP/AVP`` with our key
(SRTP "best effort", as baresip's ``mediaenc=srtp`` and most SBCs do it:
a callee that does not speak SRTP still answers). The callee's answer is
read by ``negotiate`` too: it must take our suite under our tag, and a
plain answer where SRTP is required is ``SrtpRequired``.
"""

from __future__ import annotations

import enum
import ipaddress
import secrets
from dataclasses import dataclass, field

from callbridge.sip.crypto import CryptoAttribute, answer_for, choose, fresh
from callbridge.sip.errors import SipError
from callbridge.sip.grammar import (
    SDP_FMTP_RE,
    SDP_PAYLOAD_TYPE_RE,
    SDP_PORT_RE,
    SDP_PTIME_RE,
    SDP_RTPMAP_RE,
)

MAX_SDP = 16384


@dataclass(frozen=True)
class AudioFormat:
    """An audio payload format as SDP names it (``rtp.codecs.AudioFormat`` codes it)."""

    name: str
    clock_rate: int  # the rtpmap's rate: G.722 says 8000 though it samples at 16 kHz
    channels: int = 1  # the rtpmap's channels: Opus says 2 whatever it carries
    wideband: bool = False

    def rtpmap(self) -> str:
        suffix = f"/{self.channels}" if self.channels > 1 else ""
        return f"{self.name}/{self.clock_rate}{suffix}"


FORMATS = {
    f.name.upper(): f
    for f in (
        AudioFormat("opus", 48_000, channels=2, wideband=True),
        AudioFormat("G722", 8000, wideband=True),
        AudioFormat("PCMU", 8000),
        AudioFormat("PCMA", 8000),
    )
}
# Every codec we speak, in SDP's names; a session may take fewer (``SdpSession(codecs=…)``).
SUPPORTED = tuple(f.name for f in FORMATS.values())
# The payload types our offers give each codec (RFC 3551's static ones; Opus has none).
OFFER_PAYLOAD_TYPES = {"OPUS": 111, "G722": 9, "PCMU": 0, "PCMA": 8}
# Opus mono, and nothing above what the 16 kHz mix keeps (RFC 7587 section 7).
OPUS_FMTP = "maxplaybackrate=16000; sprop-maxcapturerate=16000; stereo=0; sprop-stereo=0"
# What calls we place offer unless their trunk says (``bridge.trunks``): G.711, which
# every carrier takes; a trunk that carries wideband lists G722 or opus.
NARROWBAND = ("PCMU", "PCMA")


class SrtpPolicy(enum.StrEnum):
    """What the bridge asks of a caller's media (``serve --srtp``)."""

    OFF = "off"  # plain RTP only: an RTP/SAVP offer is a 488
    OFFERED = "offered"  # SRTP when the caller offers it, plain RTP otherwise
    REQUIRED = "required"  # SRTP or nothing: an RTP/AVP offer is a 488 (downgrade refused)


class SrtpRequired(SipError):
    """A plain RTP offer where SRTP is required: refused, and counted by the bridge."""

    def __init__(self) -> None:
        super().__init__(488, "SRTP required (RTP/SAVP with a=crypto)")


SECURE_PROTOCOLS = ("RTP/SAVP", "RTP/SAVPF")
PLAIN_PROTOCOLS = ("RTP/AVP", "RTP/AVPF")


@dataclass(frozen=True)
class SrtpKeys:
    """The keys an SDES exchange settled: the suite, ours (we send) and theirs (we receive)."""

    suite: str
    local: bytes
    remote: bytes


class Direction(enum.StrEnum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    def mirrored(self) -> Direction:
        return {
            Direction.SENDONLY: Direction.RECVONLY,
            Direction.RECVONLY: Direction.SENDONLY,
        }.get(self, self)


@dataclass
class MediaDescription:
    media: str
    port: int
    protocol: str
    formats: list[int]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    connection: str | None = None
    direction: Direction | None = None
    ptime: int | None = None
    crypto: list[str] = field(default_factory=list)  # the a=crypto values, unread
    rtcp_mux: bool = False  # a=rtcp-mux (RFC 5761): RTCP on the RTP port
    rtcp_port: int | None = None  # a=rtcp (RFC 3605): RTCP elsewhere than port + 1


@dataclass
class SessionDescription:
    origin: str
    connection: str | None
    media: list[MediaDescription]
    direction: Direction = Direction.SENDRECV

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        """Read an SDP body; raises SipError on anything malformed, and nothing else.

        The status is 400 for a body that breaks the grammar and 488 for one
        we could read but will not act on (a connection address that is not
        an IP literal).
        """
        if len(data) > MAX_SDP:
            raise SipError(400, "SDP body too large")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SipError(400, "SDP is not UTF-8") from None
        origin = ""
        connection: str | None = None
        direction = Direction.SENDRECV
        media: list[MediaDescription] = []
        seen_version = False
        for number, raw in enumerate(text.replace("\r\n", "\n").split("\n")):
            line = raw.strip()
            if not line:
                continue
            if len(line) < 2 or line[1] != "=":
                raise SipError(400, f"SDP line {number + 1} is not type=value")
            kind, value = line[0], line[2:]
            if kind == "v":
                if value.strip() != "0":
                    raise SipError(400, "SDP version is not 0")
                seen_version = True
            elif kind == "o":
                origin = value
            elif kind == "c":
                address = _connection(value)
                if media:
                    media[-1].connection = address
                else:
                    connection = address
            elif kind == "m":
                media.append(_media_line(value))
            elif kind == "a":
                _attribute(value, media[-1] if media else None)
                if not media and value in Direction.__members__.values():
                    direction = Direction(value)
        if not seen_version:
            raise SipError(400, "SDP without v=0")
        return cls(origin=origin, connection=connection, media=media, direction=direction)


def _connection(value: str) -> str:
    # connection-field = [%x63 "=" nettype SP addrtype SP connection-address CRLF]
    # nettype = token ("IN") ; addrtype = token ("IP4" / "IP6") ; the multicast
    # forms of connection-address add "/" ttl ["/" integer] after the address.
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SipError(400, "malformed c= line")
    address = parts[2].split("/")[0]
    # Only an IP literal of the named family: an FQDN would have us resolve a
    # name a stranger chose before sending media to it.
    family: type[ipaddress.IPv4Address | ipaddress.IPv6Address] = (
        ipaddress.IPv4Address if parts[1] == "IP4" else ipaddress.IPv6Address
    )
    try:
        family(address)
    except ValueError:
        raise SipError(488, f"c= address {address[:40]!r} is not an {parts[1]} literal") from None
    return address


def _media_line(value: str) -> MediaDescription:
    # media-field = "m=" media SP port ["/" integer] SP proto 1*(SP fmt)
    parts = value.split()
    if len(parts) < 4:
        raise SipError(400, "malformed m= line")
    port_match = SDP_PORT_RE.match(parts[1])
    if port_match is None or int(port_match[1]) > 65535:
        raise SipError(400, f"malformed m= port {parts[1][:12]!r}")
    formats: list[int] = []
    for fmt in parts[3:]:
        # Non-numeric formats belong to non-RTP media; they are not ours to refuse.
        if SDP_PAYLOAD_TYPE_RE.match(fmt) and int(fmt) < 128:
            formats.append(int(fmt))
    return MediaDescription(parts[0], int(port_match[1]), parts[2], formats)


def _attribute(value: str, media: MediaDescription | None) -> None:
    # Attributes we cannot read are skipped, as RFC 4566 section 5.13 asks of
    # unknown ones: a wrong rtpmap leaves its payload type without a codec,
    # and the offer is then answered (or refused with 488) on what remains.
    name, _, rest = value.partition(":")
    if media is None:
        return
    if name == "rtpmap":
        rtpmap = SDP_RTPMAP_RE.match(rest.strip())
        if rtpmap is not None and int(rtpmap[1]) < 128:
            media.rtpmap[int(rtpmap[1])] = (rtpmap[2], int(rtpmap[3]))
    elif name == "fmtp":
        fmtp = SDP_FMTP_RE.match(rest.strip())
        if fmtp is not None and int(fmtp[1]) < 128:
            media.fmtp[int(fmtp[1])] = (fmtp[2] or "").strip()
    elif name == "ptime":
        if SDP_PTIME_RE.match(rest.strip()):
            media.ptime = int(rest.strip())
    elif name == "crypto":
        if len(media.crypto) < 16:  # an offer lists a few suites; more is noise
            media.crypto.append(rest.strip())
    elif name == "rtcp-mux":
        media.rtcp_mux = True
    elif name == "rtcp":
        port = SDP_PORT_RE.match(rest.strip().split(" ", 1)[0])
        if port is not None and 0 < int(port[1]) <= 65535:
            media.rtcp_port = int(port[1])
    elif name in Direction.__members__.values():
        media.direction = Direction(name)


@dataclass(frozen=True)
class Negotiated:
    """What an answer settled: the codec, the numbers, where to send, which way."""

    codec: str
    payload_type: int
    dtmf_payload_type: int | None
    ptime: int
    remote_host: str
    remote_port: int
    direction: Direction
    answer: bytes
    srtp: SrtpKeys | None = None
    # Where the peer's RTCP goes: on the RTP port (RFC 5761) or its own (port + 1 or a=rtcp).
    rtcp_mux: bool = False
    rtcp_port: int | None = None

    @property
    def on_hold(self) -> bool:
        """The caller put us on hold: send nothing (or only what a=recvonly allows)."""
        return self.direction in (Direction.RECVONLY, Direction.INACTIVE) or self.remote_host in (
            "0.0.0.0",
            "::",
        )


def offered_host(offer_body: bytes) -> str | None:
    """The address an offer's first audio stream names (None: none, or unreadable).

    For choosing which of our addresses to answer with (``sip.advertise``);
    ``SdpSession.negotiate`` reads the offer again and rejects what is wrong.
    """
    try:
        offer = SessionDescription.parse(offer_body)
    except SipError:
        return None
    audio = next((m for m in offer.media if m.media == "audio" and m.port != 0), None)
    return (audio.connection if audio else None) or offer.connection


class SdpSession:
    """Our side of one call's SDP: the origin line, whose version rises with each answer."""

    def __init__(
        self,
        local_host: str,
        session_id: int | None = None,
        srtp: SrtpPolicy = SrtpPolicy.OFF,
        codecs: tuple[str, ...] = SUPPORTED,
    ) -> None:
        """``codecs``: the encoding names this session may answer with (``("PCMU",
        "PCMA")`` keeps a call narrowband)."""
        unknown = [c for c in codecs if c.upper() not in FORMATS]
        if unknown or not codecs:
            raise ValueError(f"codecs: we speak {', '.join(SUPPORTED)}, not {unknown or 'none'}")
        self.codecs = frozenset(c.upper() for c in codecs)
        self.local_host = local_host
        self.session_id = session_id if session_id is not None else secrets.randbelow(2**31)
        self.version = self.session_id
        self.srtp = srtp
        # Our SDES key, kept across re-offers of the same suite: a new key
        # would restart our rollover counter under the peer's feet.
        self._local_crypto: CryptoAttribute | None = None
        # The key we offered (calls we place): the answer must take it.
        self._offered: CryptoAttribute | None = None

    def offer(self, local_port: int) -> bytes:
        """Our offer for a call we place: the session's codecs, wideband first (a callee
        answers with the first it takes), and RFC 4733 keys, sendrecv.

        The callee's answer is read with ``negotiate`` (an answer names the
        codec it chose first, as an offer names the one it prefers).
        """
        ip = "IP6" if ":" in self.local_host else "IP4"
        protocol = "RTP/SAVP" if self.srtp is SrtpPolicy.REQUIRED else "RTP/AVP"
        offered = [
            (fmt, OFFER_PAYLOAD_TYPES[key])
            for key, fmt in sorted(FORMATS.items(), key=lambda item: not item[1].wideband)
            if key in self.codecs
        ]
        payload_types = " ".join(str(pt) for _, pt in offered)
        lines = [
            "v=0",
            f"o=callbridge {self.session_id} {self.version} IN {ip} {self.local_host}",
            "s=callbridge",
            f"c=IN {ip} {self.local_host}",
            "t=0 0",
            f"m=audio {local_port} {protocol} {payload_types} 101",
        ]
        for fmt, pt in offered:
            lines.append(f"a=rtpmap:{pt} {fmt.rtpmap()}")
            if fmt.name == "opus":
                lines.append(f"a=fmtp:{pt} {OPUS_FMTP}")
        lines += [
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
            "a=rtcp-mux",  # offered; RTCP on port + 1 too, until the answer says
        ]
        if self.srtp is not SrtpPolicy.OFF:
            if self._offered is None:
                self._offered = fresh()
            lines.append(f"a=crypto:{self._offered.format()}")
        return ("\r\n".join(lines) + "\r\n").encode()

    def negotiate(self, offer_body: bytes, local_port: int) -> Negotiated:
        """Answer an offer for one audio stream; SipError(488) if nothing fits."""
        offer = SessionDescription.parse(offer_body)
        audio = next((m for m in offer.media if m.media == "audio" and m.port != 0), None)
        if audio is None:
            raise SipError(488, "no audio stream offered")
        crypto = self._crypto(audio)
        codec: tuple[AudioFormat, int] | None = None
        dtmf_pt: int | None = None
        for pt in audio.formats:
            name, clock = audio.rtpmap.get(pt, _static(pt))
            fmt = FORMATS.get(name.upper())
            usable = fmt is not None and fmt.name.upper() in self.codecs and clock == fmt.clock_rate
            # The offerer's first codec, unless a wideband one comes later.
            if fmt is not None and usable and (codec is None or fmt.wideband > codec[0].wideband):
                codec = (fmt, pt)
            if name.lower() == "telephone-event" and clock == 8000 and dtmf_pt is None:
                dtmf_pt = pt
        if codec is None:
            names = ", ".join(sorted(self.codecs))
            raise SipError(488, f"no common codec (we take {names})")
        host = audio.connection or offer.connection
        if host is None:
            raise SipError(400, "SDP without a connection address")
        direction = audio.direction or offer.direction
        if host in ("0.0.0.0", "::") and direction is Direction.SENDRECV:
            direction = Direction.SENDONLY  # RFC 2543 hold
        ptime = audio.ptime or 20
        if ptime not in (10, 20, 30, 40, 60):
            ptime = 20
        self.version += 1
        answer = self._answer(
            codec, dtmf_pt, ptime, local_port, direction.mirrored(), crypto, audio.rtcp_mux
        )
        keys = None
        if crypto is not None:
            keys = SrtpKeys(crypto[1].suite, crypto[1].key, crypto[0].key)
        return Negotiated(
            codec=codec[0].name,
            payload_type=codec[1],
            dtmf_payload_type=dtmf_pt,
            ptime=ptime,
            remote_host=host,
            remote_port=audio.port,
            direction=direction.mirrored(),
            answer=answer,
            srtp=keys,
            rtcp_mux=audio.rtcp_mux,
            rtcp_port=audio.rtcp_port if audio.rtcp_port is not None else audio.port + 1,
        )

    def _crypto(self, audio: MediaDescription) -> tuple[CryptoAttribute, CryptoAttribute] | None:
        """The offered and our answering key (None: plain RTP); SipError(488) if not allowed."""
        if self._offered is not None:
            return self._answered_crypto(audio, self._offered)
        if audio.protocol in PLAIN_PROTOCOLS:
            if self.srtp is SrtpPolicy.REQUIRED:
                raise SrtpRequired()
            return None
        if audio.protocol not in SECURE_PROTOCOLS or self.srtp is SrtpPolicy.OFF:
            raise SipError(488, f"media protocol {audio.protocol[:20]}")
        offered = choose(audio.crypto)
        if offered is None:
            raise SipError(488, "no usable a=crypto (we take AES_CM_128_HMAC_SHA1_80/32)")
        mine = self._local_crypto
        if mine is None or mine.suite != offered.suite:
            mine = answer_for(offered)
        self._local_crypto = mine = answer_for(offered, mine.key)
        return offered, mine

    def _answered_crypto(
        self, audio: MediaDescription, ours: CryptoAttribute
    ) -> tuple[CryptoAttribute, CryptoAttribute] | None:
        """The callee's key and ours, from their answer to our SRTP offer (None: plain RTP).

        An answer takes SRTP by an ``a=crypto`` under our tag and suite (RFC
        4568 section 7.1.2); in RTP/AVP that is SRTP best effort accepted.
        Read once: the callee's later offers (re-INVITEs) are offers like any other.
        """
        self._offered = None
        if audio.protocol not in PLAIN_PROTOCOLS + SECURE_PROTOCOLS:
            raise SipError(488, f"media protocol {audio.protocol[:20]}")
        if not audio.crypto:
            if audio.protocol in SECURE_PROTOCOLS:
                raise SipError(488, "an RTP/SAVP answer without a=crypto")
            if self.srtp is SrtpPolicy.REQUIRED:
                raise SrtpRequired()
            return None
        theirs = choose(audio.crypto)
        if theirs is None or theirs.tag != ours.tag or theirs.suite != ours.suite:
            raise SipError(488, "the answer's a=crypto is not the key we offered")
        self._local_crypto = ours
        return theirs, ours

    def _answer(
        self,
        codec: tuple[AudioFormat, int],
        dtmf_pt: int | None,
        ptime: int,
        port: int,
        direction: Direction,
        crypto: tuple[CryptoAttribute, CryptoAttribute] | None = None,
        rtcp_mux: bool = False,
    ) -> bytes:
        ip = "IP6" if ":" in self.local_host else "IP4"
        formats = [codec[1]] + ([dtmf_pt] if dtmf_pt is not None else [])
        # AVPF is answered as AVP (we send no feedback), SAVPF as SAVP.
        protocol = "RTP/AVP" if crypto is None else "RTP/SAVP"
        lines = [
            "v=0",
            f"o=callbridge {self.session_id} {self.version} IN {ip} {self.local_host}",
            "s=callbridge",
            f"c=IN {ip} {self.local_host}",
            "t=0 0",
            f"m=audio {port} {protocol} {' '.join(str(f) for f in formats)}",
            f"a=rtpmap:{codec[1]} {codec[0].rtpmap()}",
        ]
        if codec[0].name == "opus":
            # Mono, and nothing above what the 16 kHz mix keeps (RFC 7587 section 7).
            lines.append(f"a=fmtp:{codec[1]} {OPUS_FMTP}")
        if crypto is not None:
            lines.append(f"a=crypto:{crypto[1].format()}")
        if dtmf_pt is not None:
            lines += [f"a=rtpmap:{dtmf_pt} telephone-event/8000", f"a=fmtp:{dtmf_pt} 0-16"]
        lines += [f"a=ptime:{ptime}", f"a={direction.value}"]
        if rtcp_mux:
            lines.append("a=rtcp-mux")  # offered: taken (RFC 5761), RTCP on the RTP port
        return ("\r\n".join(lines) + "\r\n").encode()


def _static(pt: int) -> tuple[str, int]:
    """The static payload types of RFC 3551 that matter to us."""
    return {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000), 18: ("G729", 8000)}.get(
        pt, ("", 0)
    )
