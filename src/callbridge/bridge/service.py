"""The bridge: SIP calls in, through the IVR, into the event's conference.

This is the glue of the telephony side, run by ``callbridge serve`` in the
media plane's process (``control.server`` serves it to the web app). It owns
the SIP endpoints (UDP and TCP), one RTP socket per leg, the lobby clock that
plays IVR prompts, one clock per live conference, and the writer that puts
the call log into the store. The decisions are made by the sans-IO pieces it
wires together: ``sip/``, ``rtp/``, ``ivr/``, ``media/``, and the call
controller (``bridge.controller``: who may join, the keypad and moderator
commands, the question queue, start and end), whose events this class feeds
and whose commands it carries out (``_carry_out``).

It is still over the house's ~500 lines: what remains is I/O with no other
home yet: the guard's waits, dial plans and alerts (``ivr.guard`` decides),
replay by phone, each conference's recording and webcast, the call log's
writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from callbridge.bridge.batch_send import batch_sender
from callbridge.bridge.commands import (
    AnswerCaller,
    Changed,
    CloseLine,
    Command,
    Disconnect,
    EndCall,
    EndConference,
    EnterCall,
    Farewell,
    JoinConference,
    KeyPressed,
    LeaveConference,
    LeftCall,
    Moderate,
    NameParticipant,
    OpenConference,
    OpenLine,
    PasscodeMatched,
    QuestionWritten,
    RecordAudit,
    SetEventState,
    SetMuted,
    SetQuestionState,
    StartCall,
    StartConference,
    Whisper,
)
from callbridge.bridge.control import (
    Action as ModeratorAction,
)
from callbridge.bridge.control import (
    BridgeError,
    BridgeStats,
    GuardAlertView,
    LiveView,
    ParticipantView,
    Percentiles,
    QueueEntry,
)
from callbridge.bridge.controller import Call, CallController
from callbridge.bridge.fanout import FanOut
from callbridge.bridge.leg import CallLeg, LegMode
from callbridge.bridge.queue import Asked
from callbridge.bridge.rtp_transport import (
    BatchReader,
    PortRangeExhausted,
    RtpPortPool,
    RtpSocket,
    sweep,
)
from callbridge.bridge.sip_transport import (
    EndpointDriver,
    SipTcpServer,
    SipUdpProtocol,
    log_failure,
)
from callbridge.events.phones import normalise_dialled
from callbridge.events.schema import EventRecord, EventState
from callbridge.ivr.guard import Alert, AlertBoard, GuardRules, PasscodeGuard, Standing, Vouch
from callbridge.ivr.machine import (
    Action,
    Answered,
    CodeLengths,
    Digit,
    Hangup,
    Input,
    IvrRules,
    IvrSession,
    IvrTransitionError,
    Join,
    LookupPasscode,
    LookupResult,
    Outcome,
    PlayPrompt,
    PromptFinished,
    StopPrompt,
    TimerFired,
)
from callbridge.ivr.machine import State as IvrState
from callbridge.media import priority
from callbridge.media.clock import MediaClock
from callbridge.media.conference import (
    Conference,
    ConferenceState,
    Participant,
    ParticipantState,
    Role,
)
from callbridge.media.mixer import Pcm
from callbridge.media.prompts import PromptLibrary, PromptName, PromptPlayer, default_library
from callbridge.media.recording import (
    MARKER,
    CallRecorder,
    ChunkWriterThread,
    RecordingError,
    assemble,
    load_assembled,
    recover_all,
)
from callbridge.replay import library
from callbridge.replay import phone as replay_phone
from callbridge.replay.phone import ReplayPlayback, ReplayRules, load_recording
from callbridge.rtp.g711 import encode
from callbridge.sip.endpoint import (
    CallCancelled,
    CallConfirmed,
    CallEnded,
    DtmfInfo,
    EndpointConfig,
    Event,
    IncomingCall,
    ReInvite,
    SipEndpoint,
)
from callbridge.sip.errors import SipError
from callbridge.sip.identity import CallerIdentity, IdentitySource, caller_identity
from callbridge.sip.sdp import SdpSession
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.events import DialPlan, EventNotFound, EventStore, PasscodeMatch
from callbridge.store.questions import QuestionStore
from callbridge.throttle import Throttle
from callbridge.webcast.blocking import PlaylistWaiter
from callbridge.webcast.captions import LiveCaptions
from callbridge.webcast.live import LiveConfig, LiveWebcast

log = logging.getLogger(__name__)

T = TypeVar("T")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# How often every leg's socket is looked at (``rtp_transport.sweep``): a leg
# that turned quiet gets its filter (or, without filters, its socket drained)
# this much later at most. A tenth of the legs is looked at each time, so no
# one sweep holds up the media clock.
QUIET_DRAIN_INTERVAL = 0.2
SWEEP_SHARES = 10
# A burst of callers joining one event reads the event once, not once each;
# starting and ending the call forget it at once.
JOIN_RECORD_TTL = 2.0
# Identities a trusted trunk vouches for: their user part is the caller's number.
_VOUCHED = frozenset({IdentitySource.ASSERTED, IdentitySource.FROM_URI})


@dataclass
class BridgeConfig:
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_port_min: int = 20000
    rtp_port_max: int = 29999
    trunk_networks: tuple[Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    # A leg that sends no RTP for this long is gone (no BYE reached us).
    media_timeout: float = 30.0
    ivr: IvrRules = field(default_factory=IvrRules)
    guard: GuardRules = field(default_factory=GuardRules)
    max_calls: int = 2000
    enable_tcp: bool = True
    # Ring briefly before answering: carriers play ringback meanwhile, and a
    # caller who changes their mind can still CANCEL.
    answer_delay: float = 0.25
    # Where calls are recorded (one folder per call); None records nothing.
    recordings: Path | None = None
    # Where the live webcast of each call is packaged (LL-HLS); None: no webcast.
    webcasts: Path | None = None
    # The child process that transcribes an event's recording; None: no transcripts.
    transcribe_command: Callable[[int], list[str]] | None = None
    # The live caption worker's command for a glossary; None: no live captions.
    caption_command: Callable[[Sequence[str]], list[str]] | None = None
    # How a frame goes to many listeners: "auto" (io_uring where the kernel
    # allows it, else one sendto each), "io_uring" (or fail), "sendto".
    media_sender: str = "auto"


C = TypeVar("C")


def _carrier(
    kind: type[C], carry_out: Callable[[C], object]
) -> tuple[type, Callable[[Any], object]]:
    """One row of ``Bridge._command_carriers``, checked: ``carry_out`` takes a ``kind``."""
    return kind, carry_out


class Bridge:
    """Runs the phone side of every event; ``control.server`` serves it to the web processes."""

    def __init__(
        self,
        config: BridgeConfig,
        events: EventStore,
        call_log: CallLog,
        library: PromptLibrary | None = None,
    ) -> None:
        self.config = config
        self.events = events
        self.call_log = call_log
        self.library = library or default_library()
        # Wrong passcodes are counted per caller identity (sip/identity.py),
        # and against each dialled number's and trunk's guessing budget, which
        # slows and never refuses; slowed and refused callers and slowing
        # budgets are posted for the console of every event on the number dialled.
        self.guard = PasscodeGuard(config.guard)
        self.guard_alerts = AlertBoard()
        self._refusals_noted = Throttle(60.0)
        self._identity_of: dict[str, CallerIdentity] = {}
        self._dial_plans: dict[str | None, tuple[float, DialPlan]] = {}
        self.ports = RtpPortPool(config.rtp_port_min, config.rtp_port_max)
        self.legs: dict[str, CallLeg] = {}
        self.conferences: dict[int, Conference] = {}
        # Who may join, the keys, the moderator and the queue are decided there;
        # this class carries its commands out.
        self.controller = CallController()
        self._carriers = self._command_carriers()
        self._clocks: dict[int, MediaClock] = {}
        self._endpoint_of: dict[str, SipEndpoint] = {}
        self._drivers: dict[SipEndpoint, EndpointDriver] = {}
        self._rtp: dict[str, RtpSocket] = {}
        self._rtp_reader = BatchReader()
        self._batch_sender = batch_sender(config.media_sender)
        # The database is used from one thread: every thread that runs Python
        # competes with the loop (and the media clock) for the GIL, and a burst
        # of callers keying passcodes kept six of them busy (100 ms stalls).
        self._db_thread = ThreadPoolExecutor(
            1, thread_name_prefix="callbridge-db", initializer=priority.as_media_worker
        )
        # Events as a joining caller's checks saw them, for JOIN_RECORD_TTL seconds,
        # and the passcodes that matched (a passcode changed meanwhile opens for
        # that long still).
        self._join_records: dict[int, tuple[float, EventRecord]] = {}
        self._passcode_matches: dict[tuple[str | None, str], tuple[float, PasscodeMatch]] = {}
        # Legs the lobby clock serves: in the IVR, listening to a replay, or saying goodbye.
        self._lobby_legs: dict[str, CallLeg] = {}
        self._sdp: dict[str, SdpSession] = {}
        self._log_queue: asyncio.Queue[LogEntry] = asyncio.Queue(maxsize=100_000)
        self._tasks: list[asyncio.Task[None]] = []
        self._pending_writes: set[asyncio.Task[None]] = set()  # held so they are not collected
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._lobby: MediaClock | None = None
        self._chunk_writer: ChunkWriterThread | None = None
        self._recorders: dict[int, CallRecorder] = {}
        self._webcasts: dict[int, tuple[LiveWebcast, PlaylistWaiter]] = {}
        self._captions: dict[int, LiveCaptions] = {}
        # Recordings that replay callers are listening to, memory-mapped, by path.
        self._replays: dict[Path, Pcm] = {}
        self._replay_ids = 0
        self.sip_port = config.sip_port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.versions: dict[int, int] = {}
        # Told of every live playlist published (event id, text, still live): the
        # control server pushes them to the web processes.
        self.on_playlist: Callable[[int, str | None, bool], None] | None = None
        # Told of every change to what a call's console shows (event id): the control
        # server pushes the new view to the consoles watching it.
        self.on_changed: Callable[[int], None] | None = None
        # Seconds from a caller's last passcode key to their first frame of the call.
        self.join_latency: deque[float] = deque(maxlen=10_000)
        # RTP from strangers dropped by legs that have ended (live legs count their own).
        self._foreign_dropped = 0

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the SIP sockets (port 0 picks one: see ``sip_port``) and start the clocks."""
        loop = asyncio.get_running_loop()
        self.loop = loop
        udp_endpoint = self._endpoint("UDP", self.config.sip_port)
        driver = EndpointDriver(udp_endpoint, self._on_sip_event, loop)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: SipUdpProtocol(driver),
            local_addr=(self.config.sip_host, self.config.sip_port),
        )
        self._udp = transport
        self.sip_port = transport.get_extra_info("sockname")[1]
        udp_endpoint.config.port = self.sip_port
        self._drivers[udp_endpoint] = driver
        if self.config.enable_tcp:
            tcp_endpoint = self._endpoint("TCP", self.sip_port)
            tcp_driver = EndpointDriver(tcp_endpoint, self._on_sip_event, loop)
            server = SipTcpServer(tcp_driver)
            self._tcp = await server.listen(self.config.sip_host, self.sip_port)
            self._drivers[tcp_endpoint] = tcp_driver
        if self.config.recordings is not None:
            self.config.recordings.mkdir(parents=True, exist_ok=True)
            # A call cut short by a crash is assembled before new calls come in.
            recovered = await asyncio.to_thread(recover_all, self.config.recordings)
            for item in recovered:
                log.info(
                    "recovered the recording of event %s: %.0f s in %s",
                    item.event_id,
                    item.duration_s,
                    item.wav,
                )
            self._chunk_writer = ChunkWriterThread()
            self._tasks.append(
                asyncio.create_task(
                    self._prepare_pending(self.config.recordings), name="replay-backlog"
                )
            )
        self._lobby = MediaClock(self._lobby_tick, loop=loop)
        self._lobby.start()
        self._tasks.append(asyncio.create_task(self._write_log(), name="call-log-writer"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="bridge-housekeeping"))
        self._tasks.append(asyncio.create_task(self._drain_quiet(), name="rtp-quiet-drain"))
        log.info(
            "SIP on %s:%d (UDP%s)",
            self.config.sip_host,
            self.sip_port,
            " and TCP" if self._tcp else "",
        )

    def _endpoint(self, transport: str, port: int) -> SipEndpoint:
        return SipEndpoint(
            EndpointConfig(
                host=self.config.sip_host,
                port=port,
                transport=transport,
                allowed_networks=self.config.trunk_networks,
                max_calls=self.config.max_calls,
            )
        )

    async def stop(self) -> None:
        """Hang up every call, stop the clocks, flush the call log."""
        now = self._now()
        for leg in list(self.legs.values()):
            self._hangup(leg, "server stopping", now)
        for driver in self._drivers.values():
            driver.flush()
            driver.close()
        if self._lobby is not None:
            self._lobby.stop()
        for clock in self._clocks.values():
            clock.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush_log()
        for webcast, _ in self._webcasts.values():
            await asyncio.to_thread(webcast.close)
        for captions in self._captions.values():
            await asyncio.to_thread(captions.close)
        for recorder in self._recorders.values():
            # Closed, not assembled: the next start assembles it (recover_all).
            await asyncio.to_thread(recorder.close)
        if self._chunk_writer is not None:
            await asyncio.to_thread(self._chunk_writer.close)
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        self._batch_sender.close()
        self._db_thread.shutdown(wait=True)

    def _now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    # -- BridgeControl --------------------------------------------------------------------

    def participants(self, event_id: int, include_left: bool = False) -> list[ParticipantView]:
        conference = self.conferences.get(event_id)
        if conference is None:
            return []
        return [
            ParticipantView.of(p)
            for p in conference.participants.values()
            if include_left or p.state is not ParticipantState.LEFT
        ]

    async def start_call(self, event_id: int) -> None:
        record = await self._record(event_id)
        now = datetime.now(UTC)
        await self._carry_out_awaiting(
            self.controller.handle(StartCall(event_id, record.state, now))
        )

    async def end_call(self, event_id: int) -> None:
        record = await self._record(event_id)
        now = datetime.now(UTC)
        await self._carry_out_awaiting(self.controller.handle(EndCall(event_id, record.state, now)))

    def live(self, event_id: int) -> LiveView:
        view, active = self.live_parts(event_id)
        view.participants = [ParticipantView.of(p) for p in active]
        return view

    def live_parts(self, event_id: int) -> tuple[LiveView, list[Participant]]:
        """The console's view without its participant rows, and the participants to show.

        Building a thousand participants' rows takes tens of milliseconds:
        ``control.server`` encodes each row once and again only when it changes.
        """
        call = self.controller.call(event_id)
        conference = self.conferences.get(event_id)
        if call is None or conference is None:
            idle = LiveView(
                event_id=event_id,
                state="idle",
                locked=False,
                participants=[],
                queue=[],
                listeners_by_channel={"phone": 0, "web": 0},
                version=self.versions.get(event_id, 0),
                alerts=self._alert_views(event_id),
            )
            return idle, []
        active = conference.active()
        queue = [
            self._queue_entry(call, conference, key, i) for i, key in enumerate(call.queue.order)
        ]
        view = LiveView(
            event_id=event_id,
            state=call.state.value,
            locked=call.locked,
            participants=[],
            queue=queue,
            listeners_by_channel={
                "phone": sum(1 for p in active if p.role is Role.LISTENER),
                "web": 0,
            },
            version=self.versions.get(event_id, 0),
            alerts=self._alert_views(event_id),
        )
        return view, active

    @staticmethod
    def _queue_entry(call: Call, conference: Conference, key: str, position: int) -> QueueEntry:
        """A queued caller (by participant id) or written question (by its "q…" id)."""
        written = call.written.get(key)
        if written is not None:
            return QueueEntry(
                participant_id=key,
                position=position,
                name=written.asker,
                caller_id="",
                kind="written",
                text=written.text,
                reading=call.queue.asked(key) is Asked.READING,
            )
        p = conference.participants[key]
        return QueueEntry(
            participant_id=key,
            position=position,
            name=", ".join(x for x in (p.name, p.firm) if x) or p.caller_id,
            caller_id=p.caller_id,
        )

    async def question_written(
        self, event_id: int, question_id: str, asker: str, text: str
    ) -> None:
        now = datetime.now(UTC)
        self._carry_out(
            self.controller.handle(QuestionWritten(event_id, question_id, asker, text, now))
        )

    async def act(self, event_id: int, action: ModeratorAction, actor: str) -> LiveView:
        # The store is asked only about a call not open here (ended, or nobody dialled yet).
        state = (
            (await self._record(event_id)).state if self.controller.wants_record(event_id) else None
        )
        now = datetime.now(UTC)
        self._carry_out(self.controller.handle(Moderate(event_id, action, actor, now, state)))
        return self.live(event_id)

    # -- carrying out the controller's commands ---------------------------------------------

    def _carry_out(self, commands: Iterable[Command]) -> None:
        """Do what the controller decided, in order (all but the commands that wait)."""
        for command in commands:
            carrier = self._carriers.get(type(command))
            if carrier is None:
                raise TypeError(f"{type(command).__name__} waits: use _carry_out_awaiting")
            carrier(command)

    async def _carry_out_awaiting(self, commands: Iterable[Command]) -> None:
        """``_carry_out``, with the commands that wait for the store or a file awaited in turn."""
        for command in commands:
            if isinstance(command, SetEventState):
                await self._database(self.events.set_state, command.event_id, command.state)
                self._join_records.pop(command.event_id, None)
                if command.state is EventState.ENDED:
                    self._passcode_matches.clear()
            elif isinstance(command, EndConference):
                await self._end_conference(command)
            else:
                self._carry_out((command,))

    def _media(self, event_id: int) -> Conference:
        conference = self.conferences.get(event_id)
        if conference is None:
            raise LookupError(f"the controller named event {event_id}, which has no conference")
        return conference

    def _start_conference(self, command: StartConference) -> None:
        conference = self._media(command.event_id)
        conference.start()
        self._start_recording(conference)
        self._start_webcast(conference)

    async def _end_conference(self, command: EndConference) -> None:
        event_id = command.event_id
        conference = self._media(event_id)
        conference.end(command.at)
        clock = self._clocks.pop(event_id, None)
        if clock is not None:
            clock.stop()
        conference.recorder = None
        conference.webcast = None
        webcast = self._webcasts.pop(event_id, None)
        if webcast is not None:
            # The last segment and EXT-X-ENDLIST: players stop at the end.
            await asyncio.to_thread(webcast[0].close)
            webcast[1].notify()
            if self.on_playlist is not None:
                final = webcast[0].snapshot()
                self.on_playlist(event_id, final.text if final is not None else None, False)
        captions = self._captions.pop(event_id, None)
        recorder = self._recorders.pop(event_id, None)
        if captions is not None:
            # The live text is kept beside the recording: the offline pass replaces it.
            # The worker may take seconds over its last words: the call ends without it.
            keep = recorder.directory if recorder is not None else None
            closing = asyncio.to_thread(captions.close_and_keep, keep)
            self._tasks.append(asyncio.ensure_future(closing))
        if recorder is not None:
            assert self.loop is not None
            self.loop.create_task(self._finish_recording(recorder))

    def _join_conference(self, command: JoinConference) -> None:
        leg = self.legs[command.call_id]
        conference = self._media(command.event_id)
        participant = conference.join(
            leg, command.role, leg.caller, command.at, participant_id=command.participant_id
        )
        leg.participant = participant
        leg.event_id = command.event_id
        leg.move(LegMode.CONFERENCE)
        self._lobby_legs.pop(leg.call_id, None)
        self._annotate(conference, participant.id)
        if leg.last_digit_at is not None:
            # The caller hears the call from the next tick of its clock on.
            self.join_latency.append(self._now() - leg.last_digit_at + 0.020)

    def _leave_conference(self, command: LeaveConference) -> None:
        conference = self.conferences.get(command.event_id)
        if conference is not None:
            conference.leave(command.participant_id, command.at)

    def _set_question_state(self, command: SetQuestionState) -> None:
        questions = QuestionStore(self.events.database)
        assert self.loop is not None
        task = self.loop.create_task(
            self._database(questions.settle, command.question_id, command.state, command.at)
        )
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)

    def _name_participant(self, command: NameParticipant) -> None:
        conference = self._media(command.event_id)
        participant = conference.participants.get(command.participant_id)
        if participant is not None:
            participant.name = command.name
            self._annotate(conference, command.participant_id)

    def _open_line(self, command: OpenLine) -> None:
        conference = self._media(command.event_id)
        conference.open_line(command.participant_id)
        self._annotate(conference, command.participant_id)

    def _leg_farewell(self, command: Farewell) -> None:
        leg = self.legs.get(command.call_id)
        if leg is None:
            return
        if command.reason:
            log.info("leg %s could not join: %s", leg.call_id, command.reason)
        self._farewell(leg, command.prompt)

    def _disconnect(self, command: Disconnect) -> None:
        leg = self.legs.get(command.call_id)
        if leg is not None:
            self._hangup(leg, command.reason, self._now())

    def _record_audit(self, row: RecordAudit) -> None:
        self._log(
            LogEntry(
                LogKind(row.kind.value),
                row.at,
                row.event_id,
                row.participant_id,
                caller_id=row.caller_id,
                role=row.role,
                actor=row.actor,
                detail=dict(row.detail),
            )
        )

    def _command_carriers(self) -> dict[type, Callable[[Any], object]]:
        """Each command the controller returns, and what carries it out here."""
        return dict(
            (
                _carrier(OpenConference, lambda c: self._conference(c.event_id)),
                _carrier(StartConference, self._start_conference),
                _carrier(JoinConference, self._join_conference),
                _carrier(LeaveConference, self._leave_conference),
                _carrier(
                    SetMuted, lambda c: self._media(c.event_id).set_muted(c.participant_id, c.muted)
                ),
                _carrier(NameParticipant, self._name_participant),
                _carrier(SetQuestionState, self._set_question_state),
                _carrier(OpenLine, self._open_line),
                _carrier(CloseLine, lambda c: self._media(c.event_id).close_line(c.participant_id)),
                _carrier(
                    Whisper,
                    lambda c: self._whisper(self._media(c.event_id), c.participant_id, c.prompt),
                ),
                _carrier(Farewell, self._leg_farewell),
                _carrier(Disconnect, self._disconnect),
                _carrier(RecordAudit, self._record_audit),
                _carrier(Changed, lambda c: self._changed(c.event_id)),
            )
        )

    def stats(self) -> BridgeStats:
        lateness = [t for clock in self._clocks.values() for t in clock.lateness]
        lobby = list(self._lobby.lateness) if self._lobby is not None else []
        return BridgeStats(
            legs=len(self.legs),
            legs_in_conferences=sum(
                1 for leg in self.legs.values() if leg.mode is LegMode.CONFERENCE
            ),
            conferences=sum(
                1 for c in self.conferences.values() if c.state is not ConferenceState.ENDED
            ),
            join_latency_ms=Percentiles.of([1000 * x for x in self.join_latency]),
            tick_lateness_ms=Percentiles.of([1000 * x for x in lateness]),
            lobby_tick_lateness_ms=Percentiles.of([1000 * x for x in lobby]),
            ticks_skipped=sum(clock.skipped for clock in self._clocks.values()),
            rtp_ports_in_use=self.ports.in_use,
            rtp_dropped_foreign=self._foreign_dropped
            + sum(leg.stats.foreign for leg in self.legs.values()),
            sip_refused_foreign=sum(endpoint.gate.refused for endpoint in self._drivers),
        )

    async def _database(self, call: Callable[..., T], *args: object) -> T:
        """``call(*args)`` on the bridge's database thread."""
        assert self.loop is not None
        return await self.loop.run_in_executor(self._db_thread, functools.partial(call, *args))

    async def _record(self, event_id: int) -> EventRecord:
        try:
            return await self._database(self.events.get, event_id)
        except EventNotFound:
            raise BridgeError(f"there is no event {event_id}") from None

    async def _match_passcode(self, dialled: str | None, passcode: str) -> PasscodeMatch | None:
        """What ``passcode`` opens; a match is remembered for JOIN_RECORD_TTL seconds."""
        now = self._now()
        key = (dialled, passcode)
        cached = self._passcode_matches.get(key)
        if cached is not None and now - cached[0] < JOIN_RECORD_TTL:
            return cached[1]
        match = await self._database(self.events.match_passcode, dialled, passcode)
        if match is not None:
            if len(self._passcode_matches) > 10_000:
                self._passcode_matches.clear()
            self._passcode_matches[key] = (now, match)
        return match

    async def _join_record(self, event_id: int) -> EventRecord:
        """The event as a joining caller's checks need it (windows, state), at most 2 s old."""
        now = self._now()
        cached = self._join_records.get(event_id)
        if cached is not None and now - cached[0] < JOIN_RECORD_TTL:
            return cached[1]
        record = await self._database(self.events.get, event_id)
        self._join_records[event_id] = (now, record)
        return record

    # -- SIP events -----------------------------------------------------------------------

    def _on_sip_event(self, endpoint: SipEndpoint, event: Event) -> None:
        now = self._now()
        if isinstance(event, IncomingCall):
            try:
                self._incoming(endpoint, event, now)
            except Exception:
                # A bug: the caller gets a final answer, and the leg (and its port) goes.
                self._cleanup(event.call_id, "server error")
                endpoint.reject(event.call_id, 500, now, "Server Internal Error")
                raise
        elif isinstance(event, CallConfirmed):
            pass  # media started with the 200 OK; nothing waits for the ACK
        elif isinstance(event, (CallEnded, CallCancelled)):
            reason = event.reason if isinstance(event, CallEnded) else "cancelled"
            self._cleanup(event.call_id, reason)
        elif isinstance(event, ReInvite):
            self._reinvite(endpoint, event, now)
        elif isinstance(event, DtmfInfo):
            leg = self.legs.get(event.call_id)
            if leg is not None:
                self._digit(leg, event.digit, now)

    def _incoming(self, endpoint: SipEndpoint, call: IncomingCall, now: float) -> None:
        identity = self._identity(call)
        vouch = Vouch.NONE
        if self.guard.is_refused(identity.key, now):
            # A listed speaker's phone is never refused: a guesser may have spoofed it.
            cached = self._dial_plans.get(normalise_dialled(call.dialled))
            vouch = self._vouch(identity, cached[1] if cached is not None else None)
            if cached is None and vouch is not Vouch.NONE:
                assert self.loop is not None
                self.loop.create_task(self._incoming_when_planned(endpoint, call))
                return
        if self.guard.is_refused(identity.key, now, vouch):
            # A refused guesser who keeps dialling is logged and audited once a
            # minute, not once per INVITE: a flood must not become database writes.
            if self._refusals_noted.allow(identity.key, now):
                log.warning("call from %s refused: too many wrong passcodes", identity)
                self._log(
                    LogEntry(
                        LogKind.BLOCKED,
                        datetime.now(UTC),
                        caller_id=identity.key,
                        detail={"source": call.source[0], "identity": identity.source.value},
                    )
                )
            endpoint.reject(call.call_id, 403, now, "Forbidden (too many wrong passcodes)")
            return
        self._remember_identity(call.call_id, identity)
        assert self.loop is not None
        self.loop.create_task(
            self._feed_code_lengths(call.call_id, normalise_dialled(call.dialled))
        )
        local_host = self.config.sip_host
        try:
            sock, port = self.ports.bind(local_host)
        except PortRangeExhausted:
            endpoint.reject(call.call_id, 503, now)
            return
        sdp = SdpSession(local_host)
        rtp: RtpSocket | None = None
        try:
            negotiated = sdp.negotiate(call.offer, port)
            assert self.loop is not None
            rtp = RtpSocket(sock, lambda data, addr, t: None, self.loop, self._rtp_reader)
            leg = CallLeg(
                call_id=call.call_id,
                dialled=normalise_dialled(call.dialled),
                caller=call.caller,
                source=call.source,
                negotiated=negotiated,
                local_port=port,
                send=rtp.sendto,
                prompt_player=PromptPlayer(self.library),
                ivr=IvrSession(self.config.ivr),
                now=now,
                rtp=rtp,
            )
        except Exception as error:
            # Whatever went wrong, the port goes back: ports in use equal live legs.
            if rtp is not None:
                rtp.close()  # stops watching the socket, then closes it
            sock.close()
            self.ports.release(port)
            if not isinstance(error, SipError):
                log_failure(f"call {call.call_id}: taking the offer", call.source, now)
                error = SipError(488, "Not Acceptable Here (unreadable SDP)")
            endpoint.reject(call.call_id, error.status, now, error.reason)
            return
        leg.on_digit = self._digit
        rtp.handler = leg.receive
        self.legs[call.call_id] = leg
        self._lobby_legs[call.call_id] = leg
        self._rtp[call.call_id] = rtp
        self._sdp[call.call_id] = sdp
        self._endpoint_of[call.call_id] = endpoint
        endpoint.ring(call.call_id, now)
        self.loop.call_later(self.config.answer_delay, self._answer, call.call_id)

    async def _incoming_when_planned(self, endpoint: SipEndpoint, call: IncomingCall) -> None:
        """Read the dialled number's plan (its listed speakers), then take the INVITE again."""
        dialled = normalise_dialled(call.dialled)
        try:
            await self._dial_plan(dialled)
        except Exception:  # no plan: nobody is listed, and the refusal stands
            log.exception("could not read the dial plan of %s", dialled)
            self._dial_plans[dialled] = (self._now(), DialPlan((), frozenset()))
        self._on_sip_event(endpoint, call)
        driver = self._drivers.get(endpoint)
        if driver is not None:
            driver.flush()

    def _answer(self, call_id: str) -> None:
        leg = self.legs.get(call_id)
        endpoint = self._endpoint_of.get(call_id)
        if leg is None or endpoint is None:
            return  # cancelled while ringing
        now = self._now()
        leg.last_rx = now
        endpoint.answer(call_id, leg.negotiated.answer, now)
        driver = self._drivers.get(endpoint)
        if driver is not None:
            driver.flush()
        self._run_ivr(leg, Answered(now))

    def _reinvite(self, endpoint: SipEndpoint, event: ReInvite, now: float) -> None:
        leg = self.legs.get(event.call_id)
        sdp = self._sdp.get(event.call_id)
        if leg is None or sdp is None:
            endpoint.reject_reinvite(event.call_id, 481, now)
            return
        try:
            negotiated = sdp.negotiate(event.offer, leg.local_port)
        except Exception as error:
            # Any failure answers the offer: an unanswered one blocks the next (491).
            status = error.status if isinstance(error, SipError) else 488
            endpoint.reject_reinvite(event.call_id, status, now)
            return
        leg.update_media(negotiated)
        endpoint.answer_reinvite(event.call_id, negotiated.answer, now)

    # -- the IVR ---------------------------------------------------------------------------------

    def _run_ivr(self, leg: CallLeg, event: Input) -> None:
        if leg.mode is not LegMode.IVR:
            return
        if isinstance(event, LookupResult) and event.outcome is Outcome.JOINED:
            leg.prompt.stop()
        try:
            leg.ivr.handle(event)
        except IvrTransitionError as error:
            log.debug("leg %s: %s", leg.call_id, error)
            return
        while (action := leg.ivr.next_action()) is not None:
            self._ivr_action(leg, action)

    def _ivr_action(self, leg: CallLeg, action: Action) -> None:
        if isinstance(action, PlayPrompt) and leg.mode is LegMode.REPLAY:
            return  # the replay plays its own welcome, in its own frames
        if isinstance(action, PlayPrompt) and leg.mode is LegMode.CONFERENCE:
            conference = self.conferences.get(leg.event_id or -1)
            if conference is not None and leg.participant is not None:
                conference.whisper(leg.participant.id, iter(self.library.frames(action.prompt)))
        elif isinstance(action, PlayPrompt):
            leg.prompt.start(action.prompt, action.barge_in)
        elif isinstance(action, StopPrompt):
            leg.prompt.stop()
        elif isinstance(action, LookupPasscode):
            assert self.loop is not None
            self.loop.create_task(self._lookup(leg, action.passcode))
        elif isinstance(action, Join):
            self._join(leg, action)
        elif isinstance(action, Hangup):
            self._hangup(leg, action.reason, self._now())

    async def _lookup(self, leg: CallLeg, passcode: str) -> None:
        outcome, event_id, role, hold = await self._decide(leg, passcode)
        if leg.call_id not in self.legs:
            self._identity_of.pop(leg.call_id, None)
            return
        self._run_ivr(
            leg, LookupResult(outcome, self._now(), event_id=event_id, role=role, hold=hold)
        )
        if leg.ivr.state in (IvrState.DONE, IvrState.FAREWELL):
            self._identity_of.pop(leg.call_id, None)  # no more attempts on this call

    # -- the guessing guard ------------------------------------------------------------

    def _identity(self, call: IncomingCall) -> CallerIdentity:
        """Who the trunk says is calling: the key the guard counts under."""
        source_ip = call.source[0]
        try:
            address = ipaddress.ip_address(source_ip)
            trusted = any(address in net for net in self.config.trunk_networks)
        except ValueError:
            trusted = False
        if call.request is None:
            return CallerIdentity(f"address:{source_ip}", IdentitySource.ADDRESS)
        return caller_identity(call.request, source_ip, trusted)

    def _remember_identity(self, call_id: str, identity: CallerIdentity) -> None:
        self._identity_of[call_id] = identity
        if len(self._identity_of) > 2 * self.config.max_calls:
            # Legs that ended without a lookup: forget them (live legs stay).
            for stale in [c for c in self._identity_of if c not in self.legs and c != call_id]:
                del self._identity_of[stale]

    def _vouch(self, identity: CallerIdentity | None, plan: DialPlan | None) -> Vouch:
        """LISTED_PHONE when the trunk asserts a phone that ``plan`` lists for a speaker.

        ``plan`` None (not read yet, at an INVITE): the benefit of the doubt;
        the lookup decides again with the plan read.
        """
        if identity is None or identity.source not in _VOUCHED:
            return Vouch.NONE
        if plan is None:
            return Vouch.LISTED_PHONE
        phone = normalise_dialled(identity.key.removeprefix("user:"))
        return Vouch.LISTED_PHONE if phone in plan.speaker_phones else Vouch.NONE

    def _trunk_of(self, source_ip: str) -> str:
        """The trunk a call came in on, for its guessing budget: its allowed network."""
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(source_ip)
            for network in self.config.trunk_networks:
                if address in network:
                    return str(network)
        return source_ip

    async def _dial_plan(self, dialled: str | None) -> DialPlan:
        """The events and code lengths on ``dialled``, at most JOIN_RECORD_TTL seconds old."""
        now = self._now()
        cached = self._dial_plans.get(dialled)
        if cached is not None and now - cached[0] < JOIN_RECORD_TTL:
            return cached[1]
        plan = await self._database(self.events.dial_plan, dialled)
        if len(self._dial_plans) > 10_000:
            self._dial_plans.clear()
        self._dial_plans[dialled] = (now, plan)
        return plan

    async def _feed_code_lengths(self, call_id: str, dialled: str | None) -> None:
        """Tell a new leg's IVR how long the codes on its number are (it ends a code on them)."""
        try:
            plan = await self._dial_plan(dialled)
        except Exception:  # the IVR still ends codes on '#', silence or 12 digits
            log.exception("could not read the dial plan of %s", dialled)
            return
        leg = self.legs.get(call_id)
        if leg is not None:
            self._run_ivr(leg, CodeLengths(plan.code_lengths, self._now()))

    async def _post_alert(self, alert: Alert, leg: CallLeg, source_ip: str) -> None:
        """An identity was slowed or refused: the audit trail and the consoles hear of it."""
        log.warning(
            "%s %s after %d wrong passcodes",
            alert.identity,
            alert.standing.value,
            alert.failures,
        )
        try:
            plan = await self._dial_plan(leg.dialled)
        except Exception:  # the alert still reaches the log and the audit trail
            log.exception("could not read the dial plan of %s", leg.dialled)
            plan = DialPlan((), frozenset())
        self.guard_alerts.post(alert, plan.event_ids)
        wall = datetime.now(UTC)
        kind = (
            LogKind.GUESSER_REFUSED
            if alert.standing is Standing.REFUSED
            else LogKind.GUESSER_SLOWED
        )
        detail: dict[str, object] = {
            "source": source_ip,
            "dialled": leg.dialled or "",
            "failures": alert.failures,
        }
        if alert.until is not None:
            detail["refused_for_s"] = round(alert.until - alert.at)
        if alert.delay:
            detail["delay_s"] = alert.delay
        if alert.is_budget:
            detail["budget"] = alert.identity.split(":", 1)[0]
        if alert.vouch is not Vouch.NONE:
            detail["vouched"] = alert.vouch.value  # slowed, never refused
        for event_id in plan.event_ids or (None,):
            self._log(LogEntry(kind, wall, event_id, caller_id=alert.identity, detail=detail))
        for event_id in plan.event_ids:
            self._changed(event_id)

    def _alert_views(self, event_id: int) -> list[GuardAlertView]:
        """The event's guard alerts as the console shows them, newest first."""
        wall, now = datetime.now(UTC), self._now()
        return [
            GuardAlertView(
                identity=alert.identity,
                standing="refused" if alert.standing is Standing.REFUSED else "slowed",
                failures=alert.failures,
                at=wall - timedelta(seconds=now - alert.at),
                until=None if alert.until is None else wall + timedelta(seconds=alert.until - now),
                delay_s=alert.delay,
            )
            for alert in self.guard_alerts.for_event(event_id)
        ]

    async def _decide(
        self, leg: CallLeg, passcode: str
    ) -> tuple[Outcome, int | None, str | None, bool]:
        source_ip = leg.source[0]
        identity = self._identity_of.get(leg.call_id)
        key = identity.key if identity is not None else f"address:{source_ip}"
        plan = await self._dial_plan(leg.dialled)
        vouch = self._vouch(identity, plan)
        if self.guard.is_refused(key, self._now(), vouch):
            return Outcome.BLOCKED, None, None, False
        # A code the release prints (the listener's, the replay's) is no secret:
        # it skips the guessing budgets, so the crowd keeps joining while a
        # guesser has drained them. Any other code, right or wrong, waits alike
        # (the wait says nothing about it) and holds a token of the number's
        # and the trunk's budgets until it is settled.
        match = await self._match_passcode(leg.dialled, passcode)
        secret = match is None or match.role == "speaker"
        admission = self.guard.admit(
            key,
            self._now(),
            number=(leg.dialled or "any") if secret and plan.event_ids else None,
            trunk=self._trunk_of(source_ip) if secret else None,
            vouch=vouch,
        )
        if admission.wait > 0:
            await asyncio.sleep(admission.wait)
            refused = self.guard.is_refused(key, self._now(), vouch)  # while it waited
            if leg.call_id not in self.legs or refused:
                self.guard.release(admission, self._now())  # never answered: tokens back
                return (Outcome.BLOCKED if refused else Outcome.INVALID), None, None, False
        alerts = self.guard.settle(admission, self._now(), wrong=match is None)
        if match is None:
            log.info("leg %s (%s): wrong passcode", leg.call_id, key)
            self._log(
                LogEntry(
                    LogKind.PASSCODE_FAILED,
                    datetime.now(UTC),
                    caller_id=key,
                    detail={
                        "source": source_ip,
                        "dialled": leg.dialled or "",
                        "tries": leg.ivr.tries + 1,
                        "display_name": leg.caller,
                    },
                )
            )
            for alert in alerts:
                await self._post_alert(alert, leg, source_ip)
            if self.guard.is_refused(key, self._now(), vouch):
                return Outcome.BLOCKED, None, None, False
            return Outcome.INVALID, None, None, False
        record = await self._join_record(match.event_id)
        ready: datetime | None = None
        if match.role == "replay":
            found = await asyncio.to_thread(self.replay_recording, match.event_id)
            ready = found[1] if found is not None else None
        matched = PasscodeMatched(
            leg.call_id, match.event_id, match.role, record, datetime.now(UTC), ready
        )
        (answer,) = self.controller.handle(matched)
        assert isinstance(answer, AnswerCaller)
        return answer.outcome, answer.event_id, answer.role, answer.hold

    def _join(self, leg: CallLeg, action: Join) -> None:
        identity = self._identity_of.get(leg.call_id)
        number = None
        if identity is not None and identity.source in _VOUCHED:
            number = identity.key.removeprefix("user:")
        if action.role == "replay":
            self._start_replay(leg, action.event_id, number)
            return
        entered = EnterCall(
            leg.call_id,
            action.event_id,
            action.role,
            action.hold,
            leg.caller,
            leg.dialled,
            datetime.now(UTC),
            number=number,
        )
        self._carry_out(self.controller.handle(entered))

    def _conference(self, event_id: int) -> Conference:
        conference = self.conferences.get(event_id)
        if conference is None or conference.state is ConferenceState.ENDED:
            hold_frames = self.library.frames(PromptName.HOLD_MUSIC)
            conference = Conference(
                event_id,
                encode,
                hold_music=lambda: iter(hold_frames),
                audience=lambda: FanOut(self._batch_sender),
            )
            self.conferences[event_id] = conference
            assert self.loop is not None
            clock = MediaClock(self._ticker(conference), loop=self.loop)
            self._clocks[event_id] = clock
            clock.start()
        return conference

    def _start_recording(self, conference: Conference) -> None:
        root = self.config.recordings
        if root is None or conference.event_id in self._recorders:
            return
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        directory = root / f"event-{conference.event_id}" / stamp
        try:
            recorder = CallRecorder(directory, conference.event_id, writer=self._chunk_writer)
        except (OSError, RecordingError):
            log.exception("event %d: the call is NOT being recorded", conference.event_id)
            return
        self._recorders[conference.event_id] = recorder
        conference.recorder = recorder
        for participant in conference.active():
            self._annotate(conference, participant.id)
        log.info("event %d: recording to %s", conference.event_id, directory)

    def _start_webcast(self, conference: Conference) -> None:
        root = self.config.webcasts
        if root is None or conference.event_id in self._webcasts:
            return
        directory = root / f"event-{conference.event_id}" / "live"
        try:
            # A webcast restarts from segment 0: files of an earlier run would
            # be mistaken for this one's.
            if directory.exists():
                shutil.rmtree(directory)
            captions = self._live_captions(conference.event_id, directory)
            webcast = LiveWebcast(
                directory, LiveConfig(part_units=10, parts_per_segment=9), tap=captions
            )
        except OSError:
            log.exception("event %d: the webcast could not start", conference.event_id)
            return
        waiter = PlaylistWaiter(webcast)
        assert self.loop is not None
        event_id = conference.event_id
        waiter.attach(webcast, self.loop, then=lambda: self._playlist_published(event_id))
        self._webcasts[event_id] = (webcast, waiter)
        conference.webcast = webcast
        self._playlist_published(event_id)
        log.info("event %d: webcast packaged in %s", conference.event_id, directory)

    def _live_captions(self, event_id: int, directory: Path) -> LiveCaptions | None:
        """The call's caption worker (``webcast.captions``), if live captions are on."""
        command = self.config.caption_command
        if command is None:
            return None

        def worker() -> list[str]:
            # Runs on the captions' feeder thread when a worker starts: the event's
            # glossary as it is then, read on the database's own thread.
            try:
                record = self._db_thread.submit(self.events.get, event_id).result(timeout=5)
            except Exception:
                log.warning("event %d: live captions start without the glossary", event_id)
                return command([])
            return command(record.glossary)

        try:
            captions = LiveCaptions(directory, worker)
        except OSError:
            # The webcast goes on without captions.
            log.exception("event %d: live captions could not start", event_id)
            return None
        self._captions[event_id] = captions
        return captions

    def live_stream(self, event_id: int) -> PlaylistWaiter | None:
        """The blocking-reload waiter of the event's live webcast, if it is running."""
        found = self._webcasts.get(event_id)
        return found[1] if found is not None else None

    def live_playlists(self) -> dict[int, str | None]:
        """The playlist text of every running webcast (None before its first part)."""
        return {
            event_id: snapshot.text if (snapshot := webcast.snapshot()) is not None else None
            for event_id, (webcast, _) in self._webcasts.items()
        }

    def _playlist_published(self, event_id: int, live: bool = True) -> None:
        found = self._webcasts.get(event_id) if live else None
        if self.on_playlist is None or (live and found is None):
            return
        snapshot = found[0].snapshot() if found is not None else None
        self.on_playlist(event_id, snapshot.text if snapshot is not None else None, live)

    def _annotate(self, conference: Conference, participant_id: str) -> None:
        recorder = self._recorders.get(conference.event_id)
        participant = conference.participants.get(participant_id)
        if recorder is None or participant is None or participant.role is Role.LISTENER:
            return
        recorder.annotate_stem(
            participant_id,
            role=participant.role.value,
            caller_id=participant.caller_id,
            display_name=participant.name,
        )

    async def _finish_recording(self, recorder: CallRecorder) -> None:
        try:
            await asyncio.to_thread(recorder.close)
            assembled = await asyncio.to_thread(assemble, recorder.directory)
        except Exception:
            log.exception(
                "the recording in %s could not be assembled now; the next start will try again",
                recorder.directory,
            )
            return
        log.info(
            "event %s: recording assembled, %.0f s in %s",
            assembled.event_id,
            assembled.duration_s,
            assembled.wav,
        )
        await self._prepare_replay(recorder.directory, assembled.event_id)

    async def _prepare_replay(self, directory: Path, event_id: int | None) -> None:
        """Package the web replay, then start the transcript; both after the call."""
        try:
            await asyncio.to_thread(library.package, directory)
        except Exception:
            log.exception("the replay in %s could not be packaged", directory)
            return
        command = self.config.transcribe_command
        if command is None or event_id is None:
            return
        try:
            process = await asyncio.create_subprocess_exec(
                *command(event_id),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError:
            log.exception("event %d: the transcript could not start", event_id)
            return
        _, errors = await process.communicate()
        if process.returncode != 0:
            log.error(
                "event %d: the transcript failed (%s): %s",
                event_id,
                process.returncode,
                errors.decode(errors="replace")[-2000:],
            )
        else:
            log.info("event %d: transcript written in %s", event_id, directory)

    async def _prepare_pending(self, recordings: Path) -> None:
        """Replays not packaged at the last stop (a crash, a restart) are packaged now."""
        for directory in await asyncio.to_thread(library.unpackaged, recordings):
            assembled = load_assembled(directory)
            await self._prepare_replay(directory, assembled.event_id if assembled else None)

    def _ticker(self, conference: Conference) -> Callable[[int], None]:
        seen = conference.talk_changes

        def tick(n: int) -> None:
            nonlocal seen
            conference.tick(self._now(), n)
            if conference.talk_changes != seen:  # a talk indicator on the console flipped
                seen = conference.talk_changes
                self._changed(conference.event_id)

        return tick

    # -- keys ------------------------------------------------------------------------------------

    def _digit(self, leg: CallLeg, digit: str, now: float) -> None:
        if leg.mode is LegMode.REPLAY:
            if leg.replay is not None:
                with contextlib.suppress(ValueError):  # not a keypad digit: nothing to do
                    leg.replay.press(digit, now)
                self._replay_actions(leg, now)
            return
        if leg.mode is LegMode.IVR:
            leg.last_digit_at = now
            self._run_ivr(leg, Digit(digit, now))
            return
        if leg.mode is LegMode.CONFERENCE:
            self._carry_out(
                self.controller.handle(KeyPressed(leg.call_id, digit, datetime.now(UTC)))
            )

    def _whisper(self, conference: Conference, participant_id: str, prompt: PromptName) -> None:
        conference.whisper(participant_id, iter(self.library.frames(prompt)))

    def _changed(self, event_id: int) -> None:
        self.versions[event_id] = self.versions.get(event_id, 0) + 1
        if self.on_changed is not None:
            self.on_changed(event_id)

    # -- the lobby clock: prompts for legs that are not in a conference ---------------------

    def _lobby_tick(self, n: int) -> None:
        now = self._now()
        for leg in list(self._lobby_legs.values()):
            if leg.mode is LegMode.REPLAY:
                # Each replay caller is at their own place in the recording.
                playback = leg.replay
                leg.send_pcm(playback.next_frame(now) if playback is not None else None, now)
                if playback is not None:
                    self._replay_actions(leg, now)
                continue
            if leg.mode not in (LegMode.IVR, LegMode.FAREWELL):
                continue
            was_playing = leg.prompt.playing
            frame = leg.prompt.next_frame()
            leg.send_pcm(frame, now)
            if was_playing and not leg.prompt.playing:
                if leg.mode is LegMode.FAREWELL:
                    self._hangup(leg, leg.ivr.hangup_reason or "goodbye", now)
                    continue
                self._run_ivr(leg, PromptFinished(now))
            timer = leg.ivr.get_timer()
            if leg.mode is LegMode.IVR and timer is not None and timer <= now:
                self._run_ivr(leg, TimerFired(now))

    # -- replay by phone ---------------------------------------------------------------------------

    def replay_recording(self, event_id: int) -> tuple[Path, datetime] | None:
        """The newest assembled recording of ``event_id`` and when it was ready (blocking)."""
        root = self.config.recordings
        folder = root / f"event-{event_id}" if root is not None else None
        if folder is None or not folder.is_dir():
            return None
        for directory in sorted((d for d in folder.iterdir() if d.is_dir()), reverse=True):
            assembled = load_assembled(directory)
            if assembled is not None and assembled.wav.is_file():
                ready = datetime.fromtimestamp((directory / MARKER).stat().st_mtime, UTC)
                # The whole call when a crash split it into several folders.
                return library.replay_audio(directory), ready
        return None

    def _start_replay(self, leg: CallLeg, event_id: int, number: str | None) -> None:
        leg.event_id = event_id
        leg.move(LegMode.REPLAY)
        self._replay_ids += 1
        leg.replay_id = f"r{event_id}-{self._replay_ids}"
        assert self.loop is not None
        self.loop.create_task(self._load_replay(leg, event_id))
        self._log(
            LogEntry(
                LogKind.JOIN,
                datetime.now(UTC),
                event_id,
                leg.replay_id,
                caller_id=leg.caller,
                role="replay",
                detail={
                    "call_id": leg.call_id,
                    "dialled": leg.dialled or "",
                    "number": number or "",
                },
            )
        )

    async def _load_replay(self, leg: CallLeg, event_id: int) -> None:
        found = await asyncio.to_thread(self.replay_recording, event_id)
        samples: Pcm | None = None
        if found is not None:
            samples = self._replays.get(found[0])
            if samples is None:
                try:
                    samples = await asyncio.to_thread(load_recording, found[0])
                except (OSError, replay_phone.RecordingError):
                    log.exception("event %d: the replay recording cannot be read", event_id)
                else:
                    self._replays[found[0]] = samples
        if self.legs.get(leg.call_id) is not leg or leg.mode is not LegMode.REPLAY:
            return
        if samples is None:
            self._farewell(leg, PromptName.REPLAY_NOT_YET)
            return
        leg.replay = ReplayPlayback(
            samples, self.library, ReplayRules(intro=PromptName.REPLAY_WELCOME)
        )

    def _replay_actions(self, leg: CallLeg, now: float) -> None:
        playback = leg.replay
        if playback is None:
            return
        while (action := playback.next_action()) is not None:
            if isinstance(action, replay_phone.Hangup):
                self._hangup(leg, action.reason.value, now)
                return

    def _farewell(self, leg: CallLeg, prompt: PromptName) -> None:
        """Leave the conference (if in it), say ``prompt``, then hang up."""
        if leg.mode in (LegMode.FAREWELL, LegMode.ENDED):
            return
        leg.move(LegMode.FAREWELL)
        self._lobby_legs[leg.call_id] = leg
        leg.prompt.start(prompt, barge_in=False)

    # -- endings -------------------------------------------------------------------------------

    def _hangup(self, leg: CallLeg, reason: str, now: float) -> None:
        endpoint = self._endpoint_of.get(leg.call_id)
        # Cleaned up before the BYE: the CallEnded it emits ("hangup") finds the
        # leg gone, and the leave is written with this reason.
        self._cleanup(leg.call_id, reason)
        if endpoint is not None:
            endpoint.hangup(leg.call_id, now)
            driver = self._drivers.get(endpoint)
            if driver is not None:
                driver.flush()

    def _cleanup(self, call_id: str, reason: str) -> None:
        leg = self.legs.pop(call_id, None)
        self._endpoint_of.pop(call_id, None)
        self._sdp.pop(call_id, None)
        self._lobby_legs.pop(call_id, None)
        if leg is not None:
            leg.leave_fanout()  # before its socket closes and the number is reused
        rtp = self._rtp.pop(call_id, None)
        if rtp is not None:
            rtp.close()
        if leg is None:
            return
        self.ports.release(leg.local_port)
        self._foreign_dropped += leg.stats.foreign
        if leg.mode is not LegMode.ENDED:
            leg.mode = LegMode.ENDED
        if leg.replay_id is not None and leg.event_id is not None:
            self._log_leave(leg.event_id, leg.replay_id, leg.caller, reason)
            leg.replay_id = None
        self._carry_out(self.controller.handle(LeftCall(call_id, reason, datetime.now(UTC))))

    def _log_leave(self, event_id: int, participant_id: str, caller: str, reason: str) -> None:
        self._log(
            LogEntry(
                LogKind.LEAVE,
                datetime.now(UTC),
                event_id,
                participant_id,
                caller_id=caller,
                detail={"reason": reason},
            )
        )

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
            sweep(legs, self._now())
            turn = (turn + 1) % SWEEP_SHARES

    async def _housekeeping(self) -> None:
        """Drop legs whose media stopped without a BYE."""
        while True:
            await asyncio.sleep(1.0)
            now = self._now()
            for leg in list(self.legs.values()):
                if now - leg.last_rx > self.config.media_timeout:
                    log.info(
                        "leg %s: no RTP for %.0f s; hanging up",
                        leg.call_id,
                        self.config.media_timeout,
                    )
                    self._hangup(leg, "media timeout", now)

    # -- the call log -----------------------------------------------------------------------------

    def _log(self, entry: LogEntry) -> None:
        try:
            self._log_queue.put_nowait(entry)
        except asyncio.QueueFull:
            log.error("call log queue full; dropped %s", entry.kind.value)

    async def _write_log(self) -> None:
        while True:
            first = await self._log_queue.get()
            batch = [first]
            while not self._log_queue.empty() and len(batch) < 500:
                batch.append(self._log_queue.get_nowait())
            try:
                await self._database(self.call_log.append, batch)
            except Exception:
                log.exception("could not write %d call log entries", len(batch))

    async def _flush_log(self) -> None:
        batch: list[LogEntry] = []
        while not self._log_queue.empty():
            batch.append(self._log_queue.get_nowait())
        if batch:
            await self._database(self.call_log.append, batch)

    async def flush_log(self) -> None:
        """Write pending call log entries now (tests and shutdown)."""
        await self._flush_log()
