"""One caller's media: RTP in and out, keys pressed, what they hear next.

A leg starts in the IVR (prompts from the lobby clock), moves into a
conference (the conference clock pulls its audio and hands it the mix), and
may leave with a farewell prompt. RTP parsing and the jitter buffer are the
sans-IO pieces from ``rtp/``; the leg only wires them together.

Media is taken only from the peer the offer/answer named: a datagram whose
source address is not the SDP's c= address is dropped before the jitter
buffer, the keypad or the mixer, and counted (``LegStats.foreign``). The
first datagram from that address latches its port (symmetric RTP, RFC
4961); after that, only that port is heard, until it has been silent for
``RELATCH_AFTER`` seconds (a NAT rebinding) or a re-INVITE names a new
address. So a stranger can neither speak as a caller, nor silence them with
a parallel stream, nor press keys for them (wrong passcodes, ``*6``).

This is strict on purpose: a caller behind a NAT whose SDP names a private
address (and whose packets come from the NAT's public one) is not heard.
Trunks put a session border controller in front of callers, which anchors
the media and names its own public address; a leg that drops foreign
packets says so in the log once, with both addresses.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from callbridge.media.conference import Participant
from callbridge.media.mixer import SILENCE, Pcm
from callbridge.media.prompts import PromptPlayer
from callbridge.replay.phone import ReplayPlayback
from callbridge.rtp import codecs
from callbridge.rtp.dtmf import DtmfReceiver
from callbridge.rtp.inband import KeyMerge, KeyPath, ToneDetector
from callbridge.rtp.jitter import ArrivalJitter, JitterBuffer, conceal
from callbridge.rtp.packet import RtpError, RtpPacket, is_rtcp
from callbridge.rtp.rtcp import RtcpSession
from callbridge.rtp.srtp import SrtpContext
from callbridge.rtp.stream import RtpSender
from callbridge.sip.sdp import Negotiated

if TYPE_CHECKING:
    from callbridge.bridge.rtp_transport import RtpSocket

log = logging.getLogger(__name__)

Address = tuple[str, int]

# A latched port silent this long gives way to another port of the same host.
RELATCH_AFTER = 5.0


class Sharer(Protocol):
    """What builds a leg's packets while it hears the common mix (``bridge.fanout.FanOut``)."""

    def release(self, leg: CallLeg) -> None: ...

    def retarget(self) -> None: ...


@dataclass
class LegStats:
    packets_in: int = 0
    packets_out: int = 0
    bad_packets: int = 0
    wrong_payload_type: int = 0
    rtcp: int = 0
    foreign: int = 0  # datagrams from anyone but the negotiated peer, dropped
    srtp_failed: int = 0  # SRTP packets that failed authentication (a wrong key): dropped
    inband_keys: int = 0  # keys heard as tones in the audio (counted once)
    merged_keys: int = 0  # keys that came both as RFC 4733 and as tones: counted once


class CallLeg:
    """The media side of one SIP call."""

    def __init__(
        self,
        call_id: str,
        dialled: str | None,
        caller: str,
        source: Address,
        negotiated: Negotiated,
        local_port: int,
        send: Callable[[bytes, Address], None],
        prompt_player: PromptPlayer,
        now: float,
        rtp: RtpSocket | None = None,
        inband_dtmf: bool = False,
    ) -> None:
        self.call_id = call_id
        self.dialled = dialled
        self.caller = caller
        self.source = source
        # The fan-out that builds this leg's packets while it hears the common mix.
        self.fanout: Sharer | None = None
        # The leg's own socket, for senders that batch (``send`` stays the way to send one).
        self.rtp = rtp
        # Where the peer's media comes from: its SDP host, and the port its first datagram latched.
        self.peer_host = ""
        self.latched: Address | None = None
        # SRTP when the offer/answer settled SDES keys (``sip.sdp.SrtpKeys``).
        self.srtp: SrtpContext | None = None
        self.update_media(negotiated)
        # The codec the offer/answer settled: G.711 at 8 kHz, or G.722/Opus at 16 kHz.
        self.format = codecs.by_name(negotiated.codec)
        self.codec_name = self.format.name
        # What the caller says, as the 16 kHz mix takes it; what they are sent
        # alone (prompts, a replay), at 8 or 16 kHz. The mix shared with others
        # is encoded by the conference.
        self.decoder = codecs.decoder(self.codec_name)
        self.encoder = codecs.encoder(self.codec_name)
        self.local_port = local_port
        self._send = send
        self.prompt = prompt_player
        self.sender = RtpSender(
            negotiated.payload_type, samples_per_frame=self.format.timestamp_step
        )
        # RTCP (RFC 3550): our reports, and what the peer reports of our stream. Sent on
        # the RTP socket when rtcp-mux was agreed, else by ``rtcp_send`` (the leg's
        # port + 1 socket, set by the media plane; None: it could not be bound).
        self.rtcp = RtcpSession(self.sender.ssrc, f"callbridge-{self.sender.ssrc:08x}", now)
        self.rtcp_send: Callable[[bytes, Address], None] | None = None
        self.rtcp_from: Address | None = None  # where the peer's RTCP came from (non-mux)
        self.jitter = JitterBuffer(
            target=2,
            capacity=25,
            samples_per_frame=self.format.timestamp_step,
            clock_rate=self.format.clock_rate,
        )
        # The interarrival jitter of the audio that is mixed (the metrics read it).
        self.arrival = ArrivalJitter(clock_rate=self.format.clock_rate)
        self.dtmf = DtmfReceiver()
        # Keys as tones in the audio, only from trunks that send them so (the
        # detector decodes every frame, at 8 kHz, with a decoder of its own:
        # G.722's and Opus's decoders have memory, and the mix's reads the
        # frames later, in order); merged with RFC 4733's.
        self.tones: ToneDetector | None = ToneDetector() if inband_dtmf else None
        self._tone_decoder = codecs.decoder(self.codec_name, 8000) if inband_dtmf else None
        self.keys = KeyMerge()
        self.stats = LegStats()
        # Set while the leg is in a conference's mix (its stage is the lobby's: ``bridge.lobby``).
        self.participant: Participant | None = None
        self.replay: ReplayPlayback | None = None  # set once the recording is loaded
        self.last_rx = now
        self.last_source: Address | None = None
        self.on_digit: Callable[[CallLeg, str, float], None] = lambda leg, digit, now: None
        self._last_frame: Pcm | None = None
        self._concealed = 0

    def update_media(self, negotiated: Negotiated) -> None:
        """The offer/answer (the first, or a re-INVITE's: hold, unhold, new address)."""
        self.leave_fanout()
        self.negotiated = negotiated
        # Read for every frame sent: worked out once here.
        self.remote: Address = (negotiated.remote_host, negotiated.remote_port)
        self._on_hold = negotiated.on_hold
        # Only the SDP's host is heard; its first datagram (after every offer:
        # the port may have moved) latches the port.
        self.peer_host = peer_host(negotiated.remote_host)
        self.latched = None
        # The same keys keep their contexts (and rollover counters) across re-offers.
        keys = negotiated.srtp
        if keys is None:
            self.srtp = None
        elif self.srtp is None or self.srtp.keys != (keys.suite, keys.local, keys.remote):
            self.srtp = SrtpContext(keys.suite, keys.local, keys.remote)

    @property
    def on_hold(self) -> bool:
        return self._on_hold

    def route_changed(self) -> None:
        """Its socket was connected to the caller, or disconnected: the fan-out sends anew."""
        if self.fanout is not None:
            self.fanout.retarget()

    def leave_fanout(self) -> None:
        """Build this leg's packets itself again (before it sends alone, or closes)."""
        if self.fanout is not None:
            self.fanout.release(self)

    # -- in -----------------------------------------------------------------

    @property
    def audio_payload_type(self) -> int:
        return self.negotiated.payload_type

    @property
    def quiet(self) -> bool:
        """Nobody hears this caller: their audio is only proof that they are still there.

        Never for a leg whose keys come as tones: any frame may hold one (``*1``),
        so its audio is neither filtered by the kernel nor skipped unread.
        """
        participant = self.participant
        return participant is not None and not participant.may_talk and self.tones is None

    def heard(self, packets: int, now: float) -> None:
        """``packets`` of the caller's audio arrived and were counted unread (a quiet leg)."""
        if packets:
            self.stats.packets_in += packets
            self.last_rx = now

    def receive(self, data: bytes, addr: Address, now: float) -> None:
        """One datagram from the leg's RTP socket."""
        srtp = self.srtp
        plain: bytes | None = None
        if addr != self.latched:
            if srtp is not None and self._may_latch(data, addr, now):
                # Over SRTP only an authentic packet may latch the port: a
                # forgery from the peer's host must not take the caller's place.
                plain = self._unprotect(srtp, data)
                if plain is None:
                    return
            if not self._admit(data, addr, now):
                return
        self.last_rx = now
        self.last_source = addr
        if len(data) < 12:
            self.stats.bad_packets += 1
            return
        if srtp is not None:
            if is_rtcp(data):
                self.receive_rtcp(data, addr, now)  # SRTCP, multiplexed (RFC 5761)
                return
            if plain is None:
                plain = self._unprotect(srtp, data)
                if plain is None:
                    return
            data = plain
        # Fast path: a listener's audio is only proof of life, not parsed. (The
        # sweep counts it unread; this covers a leg read by the loop until the
        # next sweep notices it went quiet.)
        if data[1] & 0x7F == self.negotiated.payload_type and self.quiet:
            self.stats.packets_in += 1
            return
        if is_rtcp(data):
            self.receive_rtcp(data, addr, now)
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError as error:
            self.stats.bad_packets += 1
            log.debug("leg %s: dropped a bad RTP packet: %s", self.call_id, error)
            return
        self.stats.packets_in += 1
        self.rtcp.received_rtp(packet.ssrc, packet.sequence_number, packet.timestamp, now)
        if packet.payload_type == self.negotiated.dtmf_payload_type:
            pressed = self.dtmf.receive(packet)
            if pressed is not None:
                self._key(pressed.digit, KeyPath.RFC4733, now)
            return
        if packet.payload_type != self.negotiated.payload_type:
            self.stats.wrong_payload_type += 1
            return
        if self.tones is not None and self._tone_decoder is not None:
            narrow = self._tone_decoder.decode(packet.payload)
            key = self.tones.feed(narrow) if narrow is not None else None
            if key is not None:
                self.stats.inband_keys += 1
                self._key(key, KeyPath.INBAND, now)
        # Only someone who may talk is buffered.
        participant = self.participant
        if participant is not None and participant.may_talk:
            self.arrival.update(packet.ssrc, packet.timestamp, now)
            self.jitter.put(packet)

    def receive_rtcp(self, data: bytes, addr: Address, now: float) -> None:
        """The peer's RTCP, on the RTP port (mux) or the RTCP port; SRTCP on an SRTP leg."""
        self.stats.rtcp += 1
        if addr[0].removeprefix("::ffff:") != self.peer_host:
            self.stats.foreign += 1
            return
        if self.srtp is not None:
            plain = self.srtp.unprotect_rtcp(data)
            if plain is None:
                # Counted with RTCP's unreadable, not with the media's failures: peers send
                # a plain keep-alive (baresip: an APP "PING") before their first SRTCP.
                self.rtcp.bad += 1
                return
            data = plain
        if not self.negotiated.rtcp_mux:
            self.rtcp_from = addr
        self.rtcp.read(data, now)

    def send_rtcp(self, now: float, wall: float) -> None:
        """Our report (SR + SDES), SRTCP-protected on an SRTP leg. While the fan-out
        sends for the leg its sender's RTP timestamp lags; the NTP time (what the
        peer's round trip and reports use) does not."""
        sender = self.sender
        report = self.rtcp.report(
            now, wall, sender.timestamp, sender.packets_sent, sender.octets_sent
        )
        if self.srtp is not None:
            report = self.srtp.protect_rtcp(report)
        if self.negotiated.rtcp_mux:
            self._send(report, self.latched or self.remote)
        elif self.rtcp_send is not None:
            port = self.negotiated.rtcp_port or self.remote[1] + 1
            self.rtcp_send(report, self.rtcp_from or (self.remote[0], port))

    def _key(self, digit: str, path: KeyPath, now: float) -> None:
        if self.tones is None or self.keys.take(digit, path, now):
            self.on_digit(self, digit, now)
        else:
            self.stats.merged_keys += 1

    def _unprotect(self, srtp: SrtpContext, data: bytes) -> bytes | None:
        plain = srtp.unprotect(data)
        if plain is None:
            # A wrong key, a forgery or a replay: nothing of it is heard.
            self.stats.srtp_failed += 1
            if self.stats.srtp_failed == 1:
                log.info("leg %s: SRTP packet failed authentication (counted)", self.call_id)
        return plain

    def _may_latch(self, data: bytes, addr: Address, now: float) -> bool:
        """Would ``_admit`` latch onto ``addr`` with this RTP packet?"""
        if len(data) < 12 or is_rtcp(data):
            return False
        host = addr[0].removeprefix("::ffff:")
        return host == self.peer_host and (
            self.latched is None or now - self.last_rx > RELATCH_AFTER
        )

    def _admit(self, data: bytes, addr: Address, now: float) -> bool:
        """A datagram not from the latched address: latch onto it, or drop it and count it."""
        host = addr[0]
        if host.startswith("::ffff:"):
            host = host[7:]  # an IPv4 peer heard on a dual-stack socket
        if host == self.peer_host:
            if self.latched is None or now - self.last_rx > RELATCH_AFTER:
                self.latched = addr
                return True
            if is_rtcp(data):
                self.stats.rtcp += 1  # from the peer's RTCP port: never read anyway
                return False
        self.stats.foreign += 1
        if self.stats.foreign == 1:
            log.info(
                "leg %s: RTP from %s:%d dropped: the SDP named %s:%d (counted from now on)",
                self.call_id,
                addr[0],
                addr[1],
                self.peer_host,
                self.remote[1],
            )
        return False

    # -- ConferenceLeg --------------------------------------------------------

    def pull_frame(self, now: float) -> Pcm | None:
        payload = self.jitter.pop()
        if payload is None:
            self._concealed += 1
            return conceal(self._last_frame, self._concealed)
        frame = self.decoder.decode(payload)
        if frame is None:
            return None  # a ptime we did not agree to, a corrupt frame: skipped
        self._concealed = 0
        self._last_frame = frame
        return frame

    def send_payload(self, payload: bytes, now: float) -> None:
        if self.fanout is not None:
            self.fanout.release(self)
        if self._on_hold:
            self.sender.skip()
            return
        packet = self.sender.frame(payload)
        if self.srtp is not None:
            # Encoded once for everyone; protected per leg, under this leg's key.
            packet = self.srtp.protect(packet)
        self._send(packet, self.remote)
        self.stats.packets_out += 1

    # -- prompts (IVR and farewell) -------------------------------------------------

    def send_pcm(self, pcm: Pcm | None, now: float) -> None:
        frame = SILENCE if pcm is None else np.asarray(pcm, dtype=np.int16)
        self.send_payload(self.encoder.encode(frame), now)


def peer_host(host: str) -> str:
    """``host`` as a socket writes a source address (IPv6 in its canonical form)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host  # a name: nothing will come from it, and nothing is heard


@dataclass(frozen=True)
class RtpCounts:
    """Phone legs' RTP since start: packets in, and the mixed audio's frames played,
    lost and late (``rtp.jitter.JitterStats``: only legs that may talk are buffered; a
    listener's audio is filtered in the kernel, so its loss is not known).

    ``worst_jitter``: the highest interarrival jitter (s) among the legs mixed now (an
    ended leg's total carries none).
    """

    packets_in: int = 0
    played: int = 0
    lost: int = 0
    late: int = 0
    bad: int = 0
    worst_jitter: float = 0.0

    def plus(self, leg: CallLeg) -> RtpCounts:
        jitter = leg.jitter.stats
        return RtpCounts(
            self.packets_in + leg.stats.packets_in,
            self.played + jitter.played,
            self.lost + jitter.lost,
            self.late + jitter.late,
            self.bad + leg.stats.bad_packets,
            self.worst_jitter,
        )


def tally(legs: Iterable[CallLeg], start: RtpCounts) -> RtpCounts:
    """``start`` plus what ``legs`` received and lost (for the metrics).

    Reads the counters the legs keep anyway (a pass over them, on the loop,
    between ticks): nothing is added to the receive path or the tick.
    """
    packets_in, played, lost, late, bad, worst = (
        start.packets_in,
        start.played,
        start.lost,
        start.late,
        start.bad,
        start.worst_jitter,
    )
    for leg in legs:
        stats, jitter = leg.stats, leg.jitter.stats
        packets_in += stats.packets_in
        bad += stats.bad_packets
        played += jitter.played
        lost += jitter.lost
        late += jitter.late
        participant = leg.participant
        if participant is not None and participant.may_talk:
            worst = max(worst, leg.arrival.seconds)
    return RtpCounts(packets_in, played, lost, late, bad, worst)
