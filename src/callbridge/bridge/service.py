"""The bridge: SIP calls in, through the IVR, into the event's conference.

This is the asyncio glue of the telephony side, run by ``callbridge serve``
in the media plane's process (``control.server`` serves it to the web app),
as aioquic's ``asyncio/protocol.py`` is to its connection. Two sans-IO cores
decide: the lobby (``bridge.lobby``: a leg's life outside a call) and the
call controller (``bridge.controller``: who is on which call, the keys, the
moderator, the queue). The SIP endpoints (``bridge.sip_front``) and the
clocks (``bridge.media_plane``) feed them events; every command they return
is carried out by its one row in ``_carriers``, by the part that owns it:

- ``bridge.media_plane``: legs, sockets, ports, SDP, conferences, clocks;
- ``bridge.outputs``: recordings, live webcasts and captions, replays, transcripts;
- ``bridge.lookups``: the database thread, cached reads, the call log;
- ``bridge.views``: the console's view (pure).

A cascade's node plugs in by composition (``Plug``): its controller, its
conferences, its own carriers, its start and stop; never by overriding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import callbridge.bridge.commands as cmd
from callbridge.bridge import lobby, views
from callbridge.bridge.callme_desk import CallMeDesk
from callbridge.bridge.config import BridgeConfig, Carriers, Plug, carrier
from callbridge.bridge.control import Action as ModeratorAction
from callbridge.bridge.control import (
    BridgeError,
    BridgeStats,
    LiveView,
    ParticipantView,
    Percentiles,
    Role,
)
from callbridge.bridge.controller import CallController, Member
from callbridge.bridge.dialout import DialOut
from callbridge.bridge.lookups import Lookups
from callbridge.bridge.media_plane import MediaPlane, plain_conference
from callbridge.bridge.metrics import MediaMetrics
from callbridge.bridge.metrics import read as read_metrics
from callbridge.bridge.outputs import Outputs, OutputsConfig
from callbridge.bridge.rtp_transport import PortRangeExhausted, RtpPortPool
from callbridge.bridge.sip_front import SipFront
from callbridge.bridge.sip_transport import log_failure
from callbridge.events.phones import normalise_dialled
from callbridge.media.conference import ConferenceState
from callbridge.media.prompts import PromptLibrary, default_library
from callbridge.sip import endpoint as sip
from callbridge.sip.errors import SipError
from callbridge.sip.sdp import SrtpPolicy
from callbridge.store.calllog import CallLog
from callbridge.store.events import EventStore
from callbridge.store.pins import PinBook
from callbridge.webcast.blocking import PlaylistWaiter

log = logging.getLogger(__name__)

# BridgeConfig and Plug are named here too: how a bridge is made is asked of this module.
__all__ = ["Bridge", "BridgeConfig", "Plug"]


class Bridge:
    """Runs the phone side of every event; ``control.server`` serves it to the web processes."""

    def __init__(
        self,
        config: BridgeConfig,
        events: EventStore,
        call_log: CallLog,
        library: PromptLibrary | None = None,
        plug: Plug | None = None,
    ) -> None:
        self.config = config
        self.events = events
        self.library = library or default_library()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lobby = lobby.Lobby(
            lobby.LobbyRules(
                answer_delay=config.answer_delay,
                media_timeout=config.media_timeout,
                ivr=config.ivr,
                guard=config.guard,
                trunk_networks=config.trunk_networks,
            )
        )
        self.controller = plug.controller if plug is not None else CallController()
        pins = PinBook(events.database, config.pin_key) if config.pin_key is not None else None
        self.lookups = Lookups(
            events,
            call_log,
            lambda: self.media.now(),
            pins,
            journal=config.journal,
            on_link=self._database_link,
        )
        self.sip = SipFront(
            config.sip_host,
            config.trunk_networks,
            config.max_calls,
            self._on_sip,
            config.advertised(),
        )
        self.media = MediaPlane(
            config.sip_host,
            RtpPortPool(config.rtp_port_min, config.rtp_port_max),
            self.library,
            config.media_sender,
            self._tell_lobby,
            lambda now: self.carry_out(self.lobby.handle_timer(now, datetime.now(UTC))),
            lambda event_id: self.carry_out((cmd.Changed(event_id),)),
            plug.conference if plug is not None else plain_conference,
            advertised=config.advertised(),
            inband_dtmf=config.inband_dtmf_networks,
        )
        self.outputs = Outputs(
            OutputsConfig(
                config.recordings,
                config.webcasts,
                config.transcribe_command,
                config.caption_command,
            ),
            lambda event_id: self.lookups.run_blocking(events.get, event_id).glossary,
        )
        # Told of every live playlist published (event id, text, still live).
        self.on_playlist: Callable[[int, str | None, bool], None] | None = None

        def published(event_id: int, text: str | None, live: bool) -> None:
            if self.on_playlist is not None:
                self.on_playlist(event_id, text, live)

        self.outputs.on_playlist = published
        # Told of every change to what a call's console shows (event id): the control
        # server pushes the new view to the consoles watching it.
        self.on_changed: Callable[[int], None] | None = None
        self.versions: Counter[int] = Counter()
        self.sip_port = config.sip_port
        self.sip_tls_port: int | None = None
        self.media.srtp_policy = config.srtp.for_source
        # Calls we place ("dial a speaker"), when trunks are configured.
        self.dialout = (
            DialOut(
                config.trunks,
                config.sip_host,
                self.media,
                self.lookups.record,
                self._tell_lobby,
                lambda call_id, reason: self._hang_up(call_id, reason, bye=False),
                self.lookups.audit,
            )
            if config.trunks is not None
            else None
        )
        self.callme = (
            CallMeDesk(
                config.call_me,
                self.dialout,
                self.lookups.record,
                lambda dial_id: self.controller.member(dial_id) is not None,
                self.lookups.audit,
                self.controller.window,
            )
            if self.dialout is not None
            else None
        )
        self.tasks: list[asyncio.Task[None]] = []
        # INVITEs the lobby is deciding on (``Ring`` takes them).
        self._invites: dict[str, sip.IncomingCall] = {}
        self._plug = plug
        # What the metrics say of this node: its name and role on a cascade
        # (``serve`` sets them), whether it is stopping, and since when it runs.
        self.node_id = ""
        self.node_role = "standalone"
        self.draining = False
        self.started_at = time.time()
        self._carriers = self._carriers_table()
        if plug is not None:
            self._carriers.update(plug.attach(self, dict(self._carriers)))

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the SIP sockets (port 0 picks one: see ``sip_port``) and start the clocks."""
        self.loop = asyncio.get_running_loop()
        self.sip_port = await self.sip.open(self.config.sip_port, self.config.enable_tcp)
        if self.config.sip_tls is not None and self.config.sip_tls_port is not None:
            self.sip_tls_port = await self.sip.open_tls(
                self.config.sip_tls_port, self.config.sip_tls
            )
        elif self.config.srtp.default is not SrtpPolicy.OFF or self.config.srtp.trunks:
            log.warning(
                "SRTP without SIP over TLS: the SDES keys travel in clear SIP "
                "(serve --sip-tls-port); only the media path is protected"
            )
        await self.outputs.start()
        self.media.start(self.loop)
        if self.dialout is not None:
            await self.dialout.start(self.loop, self.sip_port, self.sip_tls_port)
        self.tasks.append(asyncio.create_task(self.lookups.write_log(), name="call-log-writer"))
        self.tasks.append(
            asyncio.create_task(self.lookups.refresh_codes(self._live_calls), name="code-keeper")
        )
        if self._plug is not None:
            await self._plug.start()

    async def stop(self) -> None:
        """Hang up every call, stop the clocks, flush the call log."""
        self.draining = True
        if self._plug is not None:
            await self._plug.stop()
        for call_id in list(self.media.legs):
            self._hang_up(call_id, "server stopping")
        if self.dialout is not None:
            self.dialout.stop()
        await self.sip.close()
        await self.media.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.lookups.flush_log()
        await self.outputs.close()
        await self.lookups.close_journal()
        self.lookups.close()
        if self._plug is not None:
            self._plug.close()

    # -- BridgeControl --------------------------------------------------------------------

    def participants(self, event_id: int, include_left: bool = False) -> list[ParticipantView]:
        call, conference = self.controller.call(event_id), self.media.conferences.get(event_id)
        return [ParticipantView.of(r) for r in views.rows(call, conference, include_left)]

    async def start_call(self, event_id: int) -> None:
        record = await self.lookups.record(event_id)
        now = datetime.now(UTC)
        await self.carry_out_awaiting(
            self.controller.handle(cmd.StartCall(event_id, record.state, now))
        )

    async def end_call(self, event_id: int) -> None:
        record = await self.lookups.record(event_id)
        now = datetime.now(UTC)
        await self.carry_out_awaiting(
            self.controller.handle(cmd.EndCall(event_id, record.state, now))
        )

    def live(self, event_id: int) -> LiveView:
        view, active = self.live_parts(event_id)
        view.participants = [ParticipantView.of(p) for p in active]
        return view

    def live_parts(self, event_id: int) -> tuple[LiveView, list[views.Row]]:
        """The console's view without its participant rows, and the participants to show."""
        alerts = self.lobby.alerts.for_event(event_id)
        view, rows = views.live_parts(
            event_id,
            self.controller.call(event_id),
            self.media.conferences.get(event_id),
            self.versions[event_id],
            views.alert_views(alerts, self.media.now(), datetime.now(UTC)),
        )
        view.database_reachable = self.lookups.database_up
        view.writes_waiting = self.lookups.writer.waiting
        return view, rows

    def _live_calls(self) -> list[int]:
        """The calls open on this node (their codes are kept for a database outage)."""
        return [
            event_id
            for event_id, conference in self.media.conferences.items()
            if conference.state is not ConferenceState.ENDED
        ]

    def _database_link(self, up: bool) -> None:
        """The database went away or came back: every open call's console is told."""
        for event_id in self._live_calls():
            self.carry_out((cmd.Changed(event_id),))

    async def dial(self, event_id: int, number: str, as_role: str, actor: str = "system") -> str:
        """Call ``number`` for the event; on '1' the callee joins as ``as_role``.

        Returns the dial's id (its leg's call id once answered); ``BridgeError``
        when the number is not allowed or no trunk may carry the call.
        """
        if self.dialout is None:
            raise BridgeError("no outbound trunk is configured (serve --trunks FILE)")
        try:
            role = cmd.CallerKind(as_role)
        except ValueError:
            raise BridgeError(f"unknown role {as_role!r}") from None
        return await self.dialout.dial(event_id, number, role, actor)

    def dial_state(self, dial_id: str) -> str | None:
        """A dial's state (``DialOut.state``): calling, ringing, answered, failed: ..., ended."""
        return self.dialout.state(dial_id) if self.dialout is not None else None

    async def question_written(
        self, event_id: int, question_id: str, asker: str, text: str
    ) -> None:
        now = datetime.now(UTC)
        self.carry_out(
            self.controller.handle(cmd.QuestionWritten(event_id, question_id, asker, text, now))
        )

    async def act(self, event_id: int, action: ModeratorAction, actor: str) -> LiveView:
        # The store is asked only about a call not open here (ended, or nobody dialled yet).
        wanted = self.controller.wants_record(event_id)
        state = (await self.lookups.record(event_id)).state if wanted else None
        now = datetime.now(UTC)
        self.carry_out(self.controller.handle(cmd.Moderate(event_id, action, actor, now, state)))
        return self.live(event_id)

    def stats(self) -> BridgeStats:
        ticks, lobby_ticks, skipped = self.media.lateness()
        return BridgeStats(
            legs=len(self.media.legs),
            legs_in_conferences=sum(
                1 for c in self.media.legs if self.lobby.stage(c) is lobby.Stage.CONFERENCE
            ),
            conferences=sum(
                1 for c in self.media.conferences.values() if c.state is not ConferenceState.ENDED
            ),
            join_latency_ms=Percentiles.of([1000 * x for x in self.media.join_latency]),
            tick_lateness_ms=Percentiles.of([1000 * x for x in ticks]),
            lobby_tick_lateness_ms=Percentiles.of([1000 * x for x in lobby_ticks]),
            ticks_skipped=skipped,
            rtp_ports_in_use=self.media.ports.in_use,
            rtp_dropped_foreign=self.media.dropped_foreign(),
            sip_refused_foreign=self.sip.refused_foreign,
            secure=self.sip.tls_counters() | self.media.srtp_counters(),
            dtmf_inband=self.media.keys_counted()[0],
            dtmf_merged=self.media.keys_counted()[1],
            bus=self._plug.counters() if self._plug is not None else {},
            dial_out=self.dialout.counters() if self.dialout is not None else {},
            registrations=self.dialout.registrations() if self.dialout is not None else {},
            dial_setup_ms=Percentiles.of(list(self.dialout.setup_ms)) if self.dialout else None,
            rtcp=self.media.rtcp_counters(),
        )

    async def metrics(self) -> MediaMetrics:
        """Every counter for a metrics scrape (``bridge.metrics``), a slice at a time."""
        return await read_metrics(
            self, self.node_id, self.node_role, self.draining, self.started_at
        )

    def dial_out_counters(self) -> dict[str, int]:
        """Dials placed, answered, failed (and why): empty without outbound trunks."""
        return self.dialout.counters() if self.dialout is not None else {}

    def database_counters(self) -> dict[str, int]:
        """The database link and the journal (``bridge.journal``), for the metrics."""
        return self.lookups.writer.counters()

    def cascade_counters(self) -> dict[str, int]:
        """A cascade node's bus and media port counters; empty on a standalone node."""
        if self._plug is None:
            return {}
        return {**self._plug.counters(), **self._plug.media_counters()}

    def live_stream(self, event_id: int) -> PlaylistWaiter | None:
        """The blocking-reload waiter of the event's live webcast, if it is running."""
        return self.outputs.live_stream(event_id)

    def live_playlists(self) -> dict[int, str | None]:
        """The playlist text of every running webcast (None before its first part)."""
        return self.outputs.live_playlists()

    def replay_recording(self, event_id: int) -> tuple[Path, datetime] | None:
        """The newest assembled recording of ``event_id`` and when it was ready (blocking)."""
        return self.outputs.replay_recording(event_id)

    async def flush_log(self) -> None:
        """Write pending call log entries now (tests and shutdown)."""
        await self.lookups.flush_log()

    # -- carrying out the lobby's and the controller's commands ---------------------------------

    def carry_out(self, commands: Iterable[cmd.Command | lobby.Command]) -> None:
        """Do what the lobby or the controller decided, in order (but for what waits)."""
        for command in commands:
            carry = self._carriers.get(type(command))
            if carry is None:
                raise TypeError(f"{type(command).__name__} waits: use carry_out_awaiting")
            carry(command)

    async def carry_out_awaiting(self, commands: Iterable[cmd.Command]) -> None:
        """``carry_out``, with the commands that wait for the store or a file awaited in turn."""
        for command in commands:
            if isinstance(command, cmd.SetEventState):
                await self.lookups.set_state(command.event_id, command.state)
            elif isinstance(command, cmd.EndConference):
                await self.outputs.end_call(self.media.end(command.event_id))
            else:
                self.carry_out((command,))

    def _tell_lobby(self, event: lobby.Event) -> None:
        """Tell the lobby what happened; carry out what it decides."""
        self.carry_out(self.lobby.handle(event, self.media.now(), datetime.now(UTC)))

    def _later(self, answer: Awaitable[lobby.Event | None]) -> None:
        """Tell the lobby what ``answer`` (the store, a file) says, once it has."""

        async def told() -> None:
            event = await answer
            if event is not None:
                self._tell_lobby(event)

        assert self.loop is not None
        self.loop.create_task(told())

    def _carriers_table(self) -> Carriers:
        """Each command, and the part that carries it out."""
        media, outputs, lookups = self.media, self.outputs, self.lookups

        def ask(event: cmd.Event) -> None:
            self.carry_out(self.controller.handle(event))

        def member(event_id: int, participant_id: str) -> Member | None:
            call = self.controller.call(event_id)
            return call.members.get(participant_id) if call is not None else None

        def opened(c: cmd.OpenConference) -> None:
            media.conference(c.event_id)
            lookups.keep_codes_soon(c.event_id)

        def started(c: cmd.StartConference) -> None:
            lookups.keep_codes_soon(c.event_id)
            conference = media.media(c.event_id)
            conference.start()
            call = self.controller.call(c.event_id)
            outputs.start_call(conference, call.active() if call is not None else [])

        def joined(c: cmd.JoinConference) -> None:
            waiting = self.lobby.leg(c.call_id)
            keyed = waiting.last_digit_at if waiting is not None else None
            may_talk = c.role is not Role.LISTENER
            media.join(c.call_id, c.event_id, c.participant_id, may_talk, keyed)
            outputs.annotate(member(c.event_id, c.participant_id))

        def talk(c: cmd.SetMuted | cmd.OpenLine | cmd.CloseLine) -> None:
            """The controller changed who may talk: the mix follows, the recording hears."""
            caller = member(c.event_id, c.participant_id)
            if caller is not None:
                media.set_may_talk(c.event_id, c.participant_id, caller.may_talk)
                outputs.annotate(caller)

        def changed(c: cmd.Changed) -> None:
            self.versions[c.event_id] += 1
            if self.on_changed is not None:
                self.on_changed(c.event_id)

        def whisper_to(c: lobby.WhisperTo) -> None:
            caller = self.controller.member(c.call_id)
            if caller is not None:
                media.whisper(caller.event_id, caller.id, c.prompt)

        return dict(
            (
                # The controller's commands.
                carrier(cmd.OpenConference, opened),
                carrier(cmd.StartConference, started),
                carrier(cmd.JoinConference, joined),
                carrier(cmd.LeaveConference, media.leave),
                carrier(cmd.SetMuted, talk),
                carrier(
                    cmd.NameParticipant,
                    lambda c: outputs.annotate(member(c.event_id, c.participant_id)),
                ),
                carrier(
                    cmd.SetQuestionState,
                    lambda c: lookups.settle_question(c.question_id, c.state, c.at),
                ),
                carrier(cmd.OpenLine, talk),
                carrier(cmd.CloseLine, talk),
                carrier(
                    cmd.Whisper, lambda c: media.whisper(c.event_id, c.participant_id, c.prompt)
                ),
                carrier(cmd.Farewell, self._tell_lobby),
                carrier(cmd.AnswerCaller, self._tell_lobby),
                carrier(cmd.Disconnect, lambda c: self._hang_up(c.call_id, c.reason)),
                carrier(cmd.RecordAudit, lambda c: lookups.audit(c)),
                carrier(cmd.Changed, changed),
                # The lobby's commands.
                carrier(cmd.Admit, ask),
                carrier(cmd.KeyPressed, ask),
                carrier(lobby.Refuse, self._refuse),
                carrier(lobby.Ring, self._ring),
                carrier(
                    lobby.ReadDialPlan,
                    lambda c: self._later(lookups.dial_plan_read(c.call_id, c.dialled)),
                ),
                carrier(
                    lobby.Answer, lambda c: self.sip.answer(c.call_id, media.answered(c.call_id))
                ),
                carrier(lobby.Play, media.play),
                carrier(lobby.Silence, media.silence),
                carrier(lobby.WhisperTo, whisper_to),
                carrier(
                    lobby.MatchPasscode,
                    lambda c: self._later(lookups.matched(c, outputs.replay_recording)),
                ),
                carrier(lobby.StartReplay, lambda c: self._later(self._replay(c))),
                carrier(lobby.ReplayKey, media.replay_key),
                carrier(lobby.HangUp, lambda c: self._hang_up(c.call_id, c.reason)),
            )
        )

    async def _replay(self, command: lobby.StartReplay) -> lobby.Event | None:
        samples = await self.outputs.replay_samples(command.event_id)
        if samples is None:
            return lobby.ReplayMissing(command.call_id)
        self.media.replay(command.call_id, samples)
        return None

    # -- SIP ---------------------------------------------------------------------------------------

    def _on_sip(self, endpoint: sip.SipEndpoint, event: sip.Event) -> None:
        if isinstance(event, sip.IncomingCall):
            dialled = normalise_dialled(event.dialled)
            invite = lobby.Invite(
                event.call_id, event.request, event.source[0], dialled, event.caller
            )
            # Kept until the lobby rings it, refuses it, or it goes (a CANCEL).
            self._invites[event.call_id] = event
            try:
                self._tell_lobby(invite)
            except Exception:
                # A bug: the caller gets a final answer, and the leg (and its port) goes.
                self._hang_up(event.call_id, "server error", bye=False)
                endpoint.reject(event.call_id, 500, self.media.now(), "Server Internal Error")
                raise
        elif isinstance(event, sip.CallEnded | sip.CallCancelled):
            reason = event.reason if isinstance(event, sip.CallEnded) else "cancelled"
            self._hang_up(event.call_id, reason, bye=False)
        elif isinstance(event, sip.ReInvite):
            try:
                self.sip.answer_reinvite(
                    event.call_id, self.media.reinvite(event.call_id, event.offer)
                )
            except Exception as error:
                # Any failure answers the offer: an unanswered one blocks the next (491).
                self.sip.reject_reinvite(
                    event.call_id, error.status if isinstance(error, SipError) else 488
                )
        elif isinstance(event, sip.DtmfInfo):
            self._tell_lobby(lobby.Key(event.call_id, event.digit))
        # CallConfirmed: media started with the 200 OK; nothing waits for the ACK.

    def _refuse(self, command: lobby.Refuse) -> None:
        self._invites.pop(command.call_id, None)
        self.sip.reject(command.call_id, command.status, command.reason)

    def _ring(self, command: lobby.Ring) -> None:
        """A leg for the INVITE (a port, the SDP answer), then 180 Ringing."""
        call = self._invites.pop(command.call_id)
        now = self.media.now()
        dialled = normalise_dialled(call.dialled)
        try:
            self.media.take(call.call_id, call.offer, call.caller, dialled, call.source, now)
        except Exception as error:
            self._tell_lobby(lobby.Gone(call.call_id, "not taken"))
            if isinstance(error, PortRangeExhausted):
                self.sip.reject(call.call_id, 503)
                return
            if not isinstance(error, SipError):
                log_failure(f"call {call.call_id}: taking the offer", call.source, now)
                error = SipError(488, "Not Acceptable Here (unreadable SDP)")
            self.sip.reject(call.call_id, error.status, error.reason)
            return
        self.sip.ring(call.call_id)

    def _hang_up(self, call_id: str, reason: str, bye: bool = True) -> None:
        """Forget the leg (the lobby, the call, the media), then send BYE if ``bye``.

        Cleaned up before the BYE: the CallEnded it emits ("hangup") finds
        the leg gone, and the leave is written with this reason.
        """
        self._invites.pop(call_id, None)
        leg = self.media.release(call_id)
        self._tell_lobby(lobby.Gone(call_id, reason))
        if leg is not None:
            now = datetime.now(UTC)
            self.carry_out(self.controller.handle(cmd.LeftCall(call_id, reason, now)))
        if bye and (self.dialout is None or not self.dialout.hangup(call_id)):
            self.sip.hangup(call_id)
        self.sip.forget(call_id)
