"""The media side of the bridge: legs, their sockets and ports, SDP, conferences, clocks.

``MediaPlane`` does what the lobby (``bridge.lobby``) and the call
controller (``bridge.controller``) decide about media, and decides nothing
itself: it takes a call's offer (a port, a socket, a ``CallLeg``), plays
prompts and replays to legs outside a call on the lobby clock, puts legs
into and out of each event's conference, runs one clock per conference, and
sends the common mix through the fan-out (``bridge.fanout``). What happens
on the lobby clock that the lobby must hear of (a key, a prompt's end, a
replay's goodbye, the clock's tick itself) goes to ``tell``/``on_tick``.

A cascade's node builds its conferences (``conference_factory``): an edge
relays a mix it did not make, an origin taps its mix for the edges.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from callbridge.bridge import lobby
from callbridge.bridge.batch_send import batch_sender
from callbridge.bridge.commands import LeaveConference
from callbridge.bridge.fanout import FanOut
from callbridge.bridge.leg import Address, CallLeg, RtpCounts, tally
from callbridge.bridge.rtcp_plane import RtcpPlane
from callbridge.bridge.rtp_transport import BatchReader, RtpPortPool, RtpSocket, sweep
from callbridge.media.clock import ClockStats, MediaClock
from callbridge.media.conference import (
    Audience,
    Conference,
    ConferenceLeg,
    ConferenceState,
    Participant,
)
from callbridge.media.mixer import Pcm
from callbridge.media.prompts import PromptLibrary, PromptName, PromptPlayer
from callbridge.replay import phone as replay_phone
from callbridge.replay.phone import ReplayAudio, ReplayPlayback, ReplayRules
from callbridge.rtp import codecs
from callbridge.sip.advertise import Advertised
from callbridge.sip.errors import SipError
from callbridge.sip.sdp import (
    NARROWBAND,
    Negotiated,
    SdpSession,
    SrtpPolicy,
    SrtpRequired,
    offered_host,
)

# How often every leg's socket is looked at (``rtp_transport.sweep``): a leg
# that turned quiet gets its filter (or, without filters, its socket drained)
# this much later at most. A tenth of the legs is looked at each time, so no
# one sweep holds up the media clock.
QUIET_DRAIN_INTERVAL = 0.2
SWEEP_SHARES = 10
# The lobby hears when each leg was last heard once a second (every 50 lobby ticks).
HEARD_CHECK_TICKS = 50


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HoldMusic = Callable[[], Iterator[Pcm]]
# event id, hold music, the fan-out for its listeners → the event's conference.
ConferenceFactory = Callable[[int, HoldMusic, Callable[[], Audience]], Conference]


def plain_conference(
    event_id: int, hold_music: HoldMusic, audience: Callable[[], Audience]
) -> Conference:
    """A standalone node's conference: it mixes its own callers."""
    return Conference(event_id, codecs.encoder, hold_music=hold_music, audience=audience)


def _within(host: str | None, networks: tuple[Network, ...]) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in networks)


class MediaPlane:
    """Every leg's media and every conference of one node."""

    def __init__(
        self,
        host: str,
        ports: RtpPortPool,
        library: PromptLibrary,
        media_sender: str,
        tell: Callable[[lobby.Event], None],
        on_tick: Callable[[float], None],
        on_talk: Callable[[int], None],
        conference_factory: ConferenceFactory = plain_conference,
        advertised: Advertised | None = None,
        inband_dtmf: tuple[Network, ...] = (),
    ) -> None:
        self.host = host
        # Which address each caller's SDP answer names (behind a NAT: ``sip.advertise``).
        self.advertised = advertised or Advertised(host)
        # Calls from these networks have their keys listened for as tones too.
        self.inband_dtmf = inband_dtmf
        self.ports = ports
        self.library = library
        self.tell = tell
        self.on_tick = on_tick
        # Told when a talk indicator of the event's call flipped (the console shows them).
        self.on_talk = on_talk
        self.conference_factory = conference_factory
        self.legs: dict[str, CallLeg] = {}
        self.conferences: dict[int, Conference] = {}
        self.batch_sender = batch_sender(media_sender)
        self._rtp: dict[str, RtpSocket] = {}
        self._sdp: dict[str, SdpSession] = {}
        # Calls we place: a port and our offer, held until the callee answers.
        self._reserved: dict[str, tuple[socket.socket, int, SdpSession]] = {}
        self._reader = BatchReader()
        self._clocks: dict[int, MediaClock] = {}
        # Legs the lobby clock plays to: ringing, in the IVR, in a replay, saying goodbye.
        self._lobby_legs: dict[str, CallLeg] = {}
        self._lobby_clock: MediaClock | None = None
        self._drain: asyncio.Task[None] | None = None
        self._rtcp_task: asyncio.Task[None] | None = None
        # Each leg's RTCP: its port + 1 socket where rtcp-mux was not agreed, the reports.
        self.rtcp = RtcpPlane(host)
        self.loop: asyncio.AbstractEventLoop | None = None
        # Seconds from a caller's last passcode key to their first frame of the call.
        self.join_latency: deque[float] = deque(maxlen=10_000)
        # RTP from strangers dropped by legs that have ended (live legs count their own).
        self.foreign_dropped = 0
        # What callers' offers must bring, by trunk (``serve --srtp``, ``--srtp-trunk``);
        # calls we place offer what their trunk's ``srtp`` says (``offer``).
        self.srtp_policy: Callable[[str], SrtpPolicy] = lambda host: SrtpPolicy.OFF
        # Plain RTP offers refused because SRTP is required (a 488 each).
        self.srtp_refused = 0
        # SRTP packets that failed authentication on legs that have ended.
        self.srtp_failed = 0
        # The clocks' lateness and skipped ticks since start: every conference
        # clock shares one, the lobby clock has its own (``media.clock``).
        self.conference_clocks = ClockStats()
        self.lobby_clocks = ClockStats()
        # What legs that have ended received and lost (live legs count their own).
        self._ended_rtp = RtpCounts()
        # Keys heard in-band, and keys merged as the other path's copy, by legs that have ended.
        self._keys = [0, 0]

    def now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lobby_clock = MediaClock(self._lobby_tick, loop=loop, stats=self.lobby_clocks)
        self._lobby_clock.start()
        self._drain = loop.create_task(self._drain_quiet(), name="rtp-quiet-drain")
        self._rtcp_task = loop.create_task(
            self.rtcp.run(loop, lambda: self.legs.values()), name="rtcp-reports"
        )

    async def stop(self) -> None:
        if self._lobby_clock is not None:
            self._lobby_clock.stop()
        for clock in self._clocks.values():
            clock.stop()
        for task in (self._drain, self._rtcp_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.batch_sender.close()

    # -- legs ----------------------------------------------------------------------------

    def take(
        self,
        call_id: str,
        offer: bytes,
        caller: str,
        dialled: str | None,
        source: Address,
        now: float,
    ) -> CallLeg:
        """A leg for an offered call: a port, a socket, the SDP answer.

        Raises ``PortRangeExhausted`` (no port: 503), ``SipError`` (the offer:
        488 unless it says), or anything else for an offer it could not read;
        the port is back in the pool then.
        """
        sock, port = self.ports.bind(self.host)
        media_host = offered_host(offer)
        sdp = SdpSession(
            self.advertised.media_for(source[0], media_host), srtp=self.srtp_policy(source[0])
        )

        def negotiate() -> Negotiated:
            try:
                return sdp.negotiate(offer, port)
            except SrtpRequired:
                self.srtp_refused += 1
                raise

        return self._open_leg(
            call_id,
            sock,
            port,
            sdp,
            negotiate,
            dialled=dialled,
            caller=caller,
            source=source,
            now=now,
            # By where the call comes from, or (behind a proxy, where every call comes
            # from the proxy) where its media comes from.
            inband_dtmf=_within(source[0], self.inband_dtmf)
            or _within(media_host, self.inband_dtmf),
        )

    def _open_leg(
        self,
        call_id: str,
        sock: socket.socket,
        port: int,
        sdp: SdpSession,
        negotiate: Callable[[], Negotiated],
        *,
        dialled: str | None,
        caller: str,
        source: Address,
        now: float,
        inband_dtmf: bool = False,
    ) -> CallLeg:
        """The leg on ``sock``/``port`` once ``negotiate`` has agreed the media; kept in the
        plane's books. Whatever goes wrong, the port goes back: ports in use equal live legs."""
        rtp: RtpSocket | None = None
        try:
            negotiated = negotiate()
            assert self.loop is not None
            rtp = RtpSocket(sock, lambda data, addr, t: None, self.loop, self._reader)
            leg = CallLeg(
                call_id=call_id,
                dialled=dialled,
                caller=caller,
                source=source,
                negotiated=negotiated,
                local_port=port,
                send=rtp.sendto,
                prompt_player=PromptPlayer(self.library),
                now=now,
                rtp=rtp,
                inband_dtmf=inband_dtmf,
            )
        except Exception:
            if rtp is not None:
                rtp.close()  # stops watching the socket, then closes it
            sock.close()
            self.ports.release(port)
            raise
        leg.on_digit = lambda leg, digit, now: self.tell(lobby.Key(leg.call_id, digit))
        rtp.handler = leg.receive
        if not leg.negotiated.rtcp_mux:
            assert self.loop is not None
            self.rtcp.open(self.loop, call_id, leg, port)
        self.legs[call_id] = leg
        self._lobby_legs[call_id] = leg
        self._rtp[call_id] = rtp
        self._sdp[call_id] = sdp
        return leg

    def rtcp_counters(self) -> dict[str, float]:
        """RTCP since start and the peers' view now (``bridge.rtcp_plane.RtcpPlane.counters``)."""
        return self.rtcp.counters(self.legs.values())

    def reserve(
        self,
        call_id: str,
        srtp: SrtpPolicy = SrtpPolicy.OFF,
        codecs: tuple[str, ...] = NARROWBAND,
    ) -> bytes:
        """A port for a call we place, and our SDP offer on it (``PortRangeExhausted``)."""
        sock, port = self.ports.bind(self.host)
        sdp = SdpSession(self.host, srtp=srtp, codecs=codecs)
        self._reserved[call_id] = (sock, port, sdp)
        return sdp.offer(port)

    def offer(self, call_id: str, srtp: SrtpPolicy, codecs: tuple[str, ...] = NARROWBAND) -> bytes:
        """A new offer on a reserved port, for the next trunk's SRTP policy (a fresh key)
        and codecs."""
        sock, port, _ = self._reserved[call_id]
        sdp = SdpSession(self.host, srtp=srtp, codecs=codecs)
        self._reserved[call_id] = (sock, port, sdp)
        return sdp.offer(port)

    def connect(
        self, call_id: str, answer: bytes, callee: str, source: Address, now: float
    ) -> CallLeg:
        """The callee of a placed call answered: its leg, on the reserved port.

        Raises ``SipError`` for an answer it cannot use (the port goes back then).
        """
        sock, port, sdp = self._reserved.pop(call_id)

        def negotiate() -> Negotiated:
            try:
                return sdp.negotiate(answer, port)
            except SrtpRequired:
                self.srtp_refused += 1  # a callee answering plain RTP where SRTP is required
                raise

        leg = self._open_leg(
            call_id,
            sock,
            port,
            sdp,
            negotiate,
            dialled=None,
            caller=callee,
            source=source,
            now=now,
        )
        leg.last_rx = now
        return leg

    def reinvite(self, call_id: str, offer: bytes) -> bytes:
        """The answer to a re-INVITE's offer; raises ``SipError`` (481 for no such leg)."""
        leg = self.legs.get(call_id)
        sdp = self._sdp.get(call_id)
        if leg is None or sdp is None:
            raise SipError(481, "Call/Transaction Does Not Exist")
        negotiated = sdp.negotiate(offer, leg.local_port)
        leg.update_media(negotiated)
        return negotiated.answer

    def release(self, call_id: str) -> CallLeg | None:
        """Close the leg's socket and give its port back; returns the leg, if there was one."""
        reserved = self._reserved.pop(call_id, None)
        if reserved is not None:
            reserved[0].close()
            self.ports.release(reserved[1])
        leg = self.legs.pop(call_id, None)
        self._sdp.pop(call_id, None)
        self._lobby_legs.pop(call_id, None)
        if leg is not None:
            leg.leave_fanout()  # before its socket closes and the number is reused
        rtp = self._rtp.pop(call_id, None)
        if rtp is not None:
            rtp.close()
        self.rtcp.close(call_id, leg)
        if leg is not None:
            self.ports.release(leg.local_port)
            self.foreign_dropped += leg.stats.foreign
            self.srtp_failed += leg.stats.srtp_failed
            self._ended_rtp = self._ended_rtp.plus(leg)
            self._keys[0] += leg.stats.inband_keys
            self._keys[1] += leg.stats.merged_keys
        return leg

    def answered(self, call_id: str) -> bytes | None:
        """The call is answered now: its SDP answer (None: no such leg); silence counts from now."""
        leg = self.legs.get(call_id)
        if leg is None:
            return None
        leg.last_rx = self.now()
        return leg.negotiated.answer

    # -- the lobby clock: prompts for legs that are not in a conference -----------------------

    def play(self, command: lobby.Play) -> None:
        leg = self.legs.get(command.call_id)
        if leg is None:
            return
        # Off the call's mix (a farewell), onto the lobby clock.
        leg.participant = None
        self._lobby_legs[leg.call_id] = leg
        leg.prompt.start(command.prompt, command.barge_in)

    def silence(self, command: lobby.Silence) -> None:
        leg = self.legs.get(command.call_id)
        if leg is not None:
            leg.prompt.stop()

    def replay(self, call_id: str, audio: ReplayAudio) -> None:
        """Play the recording ``audio`` to the leg, from its welcome on."""
        leg = self.legs.get(call_id)
        if leg is None:
            return
        leg.participant = None
        self._lobby_legs[call_id] = leg
        leg.replay = ReplayPlayback(
            audio.samples,
            self.library,
            ReplayRules(intro=PromptName.REPLAY_WELCOME),
            rate=audio.rate,
        )

    def replay_key(self, command: lobby.ReplayKey) -> None:
        leg = self.legs.get(command.call_id)
        if leg is None or leg.replay is None:
            return
        with contextlib.suppress(ValueError):  # not a keypad digit: nothing to do
            leg.replay.press(command.digit, self.now())
        self._replay_actions(leg)

    def _replay_actions(self, leg: CallLeg) -> None:
        playback = leg.replay
        if playback is None:
            return
        while (action := playback.next_action()) is not None:
            if isinstance(action, replay_phone.Hangup):
                leg.replay = None
                self.tell(lobby.ReplayOver(leg.call_id, action.reason.value))
                return

    def _lobby_tick(self, n: int) -> None:
        now = self.now()
        for leg in list(self._lobby_legs.values()):
            if leg.replay is not None:
                # Each replay caller is at their own place in the recording.
                leg.send_pcm(leg.replay.next_frame(now), now)
                self._replay_actions(leg)
                continue
            was_playing = leg.prompt.playing
            leg.send_pcm(leg.prompt.next_frame(), now)
            if was_playing and not leg.prompt.playing:
                self.tell(lobby.PromptDone(leg.call_id))
        self.on_tick(now)
        if n % HEARD_CHECK_TICKS == 0:
            # When each leg was last heard, for the lobby's media timeout.
            self.tell(lobby.HeardCheck({c: leg.last_rx for c, leg in self.legs.items()}))

    # -- conferences ---------------------------------------------------------------------------

    def conference(self, event_id: int) -> Conference:
        """The event's conference, opened (with its clock) if none is open."""
        conference = self.conferences.get(event_id)
        if conference is None or conference.state is ConferenceState.ENDED:
            hold_frames = self.library.frames(PromptName.HOLD_MUSIC)
            conference = self.conference_factory(
                event_id, lambda: iter(hold_frames), lambda: FanOut(self.batch_sender)
            )
            self.conferences[event_id] = conference
            assert self.loop is not None
            clock = MediaClock(
                self._ticker(conference), loop=self.loop, stats=self.conference_clocks
            )
            self._clocks[event_id] = clock
            clock.start()
        return conference

    def _ticker(self, conference: Conference) -> Callable[[int], None]:
        seen = conference.talk_changes

        def tick(n: int) -> None:
            nonlocal seen
            conference.tick(self.now(), n)
            if conference.talk_changes != seen:
                seen = conference.talk_changes
                self.on_talk(conference.event_id)

        return tick

    def media(self, event_id: int) -> Conference:
        """The event's conference, which the controller said is open."""
        conference = self.conferences.get(event_id)
        if conference is None:
            raise LookupError(f"the controller named event {event_id}, which has no conference")
        return conference

    def join(
        self,
        call_id: str,
        event_id: int,
        participant_id: str,
        may_talk: bool,
        keyed_at: float | None,
    ) -> Participant:
        """Put the caller's leg into the event's conference (``keyed_at``: their last key)."""
        leg = self.legs[call_id]
        participant = self.media(event_id).join(leg, may_talk, participant_id=participant_id)
        leg.participant = participant
        self._lobby_legs.pop(call_id, None)
        if keyed_at is not None:
            # The caller hears the call from the next tick of its clock on.
            self.join_latency.append(self.now() - keyed_at + 0.020)
        return participant

    def join_elsewhere(
        self,
        leg: ConferenceLeg,
        event_id: int,
        participant_id: str,
        may_talk: bool,
    ) -> Participant:
        """A caller of another node (a cascade's edge), mixed here, sent the mix there."""
        return self.media(event_id).join(
            leg, may_talk, participant_id=participant_id, elsewhere=True
        )

    def leave(self, command: LeaveConference) -> None:
        conference = self.conferences.get(command.event_id)
        if conference is not None:
            conference.leave(command.participant_id)

    def set_may_talk(self, event_id: int, participant_id: str, may_talk: bool) -> None:
        self.media(event_id).set_may_talk(participant_id, may_talk)

    def whisper(self, event_id: int, participant_id: str, prompt: PromptName) -> None:
        conference = self.conferences.get(event_id)
        if conference is not None:
            conference.whisper(participant_id, iter(self.library.frames(prompt)))

    def end(self, event_id: int) -> Conference:
        """End the event's conference and stop its clock."""
        conference = self.media(event_id)
        conference.end()
        clock = self._clocks.pop(event_id, None)
        if clock is not None:
            clock.stop()
        return conference

    # -- counters ------------------------------------------------------------------------------

    def lateness(self) -> tuple[list[float], list[float], int]:
        """The conference clocks' lateness, the lobby clock's, and the ticks skipped."""
        ticks = [t for clock in self._clocks.values() for t in clock.lateness]
        lobby_ticks = list(self._lobby_clock.lateness) if self._lobby_clock is not None else []
        return ticks, lobby_ticks, sum(clock.skipped for clock in self._clocks.values())

    def keys_counted(self) -> tuple[int, int]:
        """Keys heard as tones, and keys dropped as another path's copy (``rtp.inband``)."""
        legs = self.legs.values()
        return (
            self._keys[0] + sum(leg.stats.inband_keys for leg in legs),
            self._keys[1] + sum(leg.stats.merged_keys for leg in legs),
        )

    def dropped_foreign(self) -> int:
        return self.foreign_dropped + sum(leg.stats.foreign for leg in self.legs.values())

    def srtp_counters(self) -> dict[str, int]:
        """SRTP legs now, plain offers refused, packets that failed authentication."""
        legs = [leg for leg in self.legs.values() if leg.srtp is not None]
        return {
            "srtp_legs": len(legs),
            "srtp_refused": self.srtp_refused,
            "srtp_auth_failed": self.srtp_failed + sum(leg.stats.srtp_failed for leg in legs),
        }

    @property
    def ended_rtp(self) -> RtpCounts:
        """What the legs that have ended received and lost."""
        return self._ended_rtp

    def rtp_counts(
        self, legs: Iterable[CallLeg] | None = None, start: RtpCounts | None = None
    ) -> RtpCounts:
        """What ``legs`` (default: every live leg) received and lost, added to ``start``
        (default: the ended legs'), so ``rtp_counts()`` counts every phone leg since start."""
        total = self._ended_rtp if start is None else start
        return tally(self.legs.values() if legs is None else legs, total)

    async def _drain_quiet(self) -> None:
        """Look at every leg's socket five times a second, a share at a time.

        A leg becomes quiet (a listener, a muted speaker: the kernel filters
        their audio, the socket latches onto them) or attentive again (a line
        opened: all their audio comes in) within one sweep.
        """
        turn = 0
        while True:
            await asyncio.sleep(QUIET_DRAIN_INTERVAL / SWEEP_SHARES)
            legs = [
                (leg, rtp)
                for call_id, rtp in list(self._rtp.items())[turn::SWEEP_SHARES]
                if (leg := self.legs.get(call_id)) is not None
            ]
            sweep(legs, self.now())
            turn = (turn + 1) % SWEEP_SHARES
