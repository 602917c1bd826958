"""The bridge: SIP calls in, through the IVR, into the event's conference.

This is the glue of the telephony side, run by ``callbridge serve`` in the
media plane's process (``control.server`` serves it to the web app). It owns
the SIP endpoints (UDP and TCP), one RTP socket per leg, the lobby clock that
plays prompts to legs outside a call, one clock per live conference, and the
writer that puts the call log into the store. The decisions are made by the
sans-IO pieces it wires together: ``sip/``, ``rtp/``, ``media/``, the lobby
(``bridge.lobby``: a leg's life outside a call: ring, IVR, guard, replay
keys, farewell, media timeout) and the call controller (``bridge.controller``:
who may join, the keypad and moderator commands, the question queue, start
and end). It feeds both their events and carries out the commands they
return, each by its row in ``_carriers``.

It is still over the house's ~500 lines: each conference's recording and
webcast, replay by phone and the call log's writer have no other home yet.
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

from callbridge.bridge import lobby
from callbridge.bridge.batch_send import batch_sender
from callbridge.bridge.commands import (
    Admit,
    AnswerCaller,
    Changed,
    CloseLine,
    Command,
    Disconnect,
    EndCall,
    EndConference,
    Farewell,
    JoinConference,
    KeyPressed,
    LeaveConference,
    LeftCall,
    Moderate,
    NameParticipant,
    OpenConference,
    OpenLine,
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
from callbridge.bridge.leg import CallLeg
from callbridge.bridge.lobby import Lobby, LobbyRules, Stage
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
from callbridge.ivr.guard import GuardRules, Standing
from callbridge.ivr.machine import (
    IvrRules,
)
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
from callbridge.sip.sdp import SdpSession
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.events import DialPlan, EventNotFound, EventStore, PasscodeMatch
from callbridge.store.questions import QuestionStore
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
        # Each leg's life outside a call (ring, IVR, guard, replay, farewell) is
        # decided there; ``_carriers`` carries out its commands as the controller's.
        self.lobby = Lobby(
            LobbyRules(
                answer_delay=config.answer_delay,
                media_timeout=config.media_timeout,
                ivr=config.ivr,
                guard=config.guard,
                trunk_networks=config.trunk_networks,
            )
        )
        # INVITEs the lobby is deciding on (Ring or Refuse carries them out).
        self._invites: dict[str, tuple[SipEndpoint, IncomingCall]] = {}
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
        # Legs the lobby clock plays to: ringing, in the IVR, in a replay, saying goodbye.
        self._lobby_legs: dict[str, CallLeg] = {}
        self._sdp: dict[str, SdpSession] = {}
        self._log_queue: asyncio.Queue[LogEntry] = asyncio.Queue(maxsize=100_000)
        self._tasks: list[asyncio.Task[None]] = []
        self._pending_writes: set[asyncio.Task[None]] = set()  # held so they are not collected
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._lobby_clock: MediaClock | None = None
        self._chunk_writer: ChunkWriterThread | None = None
        self._recorders: dict[int, CallRecorder] = {}
        self._webcasts: dict[int, tuple[LiveWebcast, PlaylistWaiter]] = {}
        self._captions: dict[int, LiveCaptions] = {}
        # Recordings that replay callers are listening to, memory-mapped, by path.
        self._replays: dict[Path, Pcm] = {}
        self.sip_port = config.sip_port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.versions: dict[int, int] = {}
        # Told of every live playlist published (event id, text, still live): the
        # control server pushes them to the web processes.
        self.on_playlist: Callable[[int, str | None, bool], None] | None = None
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
        self._lobby_clock = MediaClock(self._lobby_tick, loop=loop)
        self._lobby_clock.start()
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
        if self._lobby_clock is not None:
            self._lobby_clock.stop()
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

    def _carry_out(self, commands: Iterable[Command | lobby.Command]) -> None:
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
        self._lobby_legs.pop(leg.call_id, None)
        self._annotate(conference, participant.id)
        waiting = self.lobby.leg(leg.call_id)
        if waiting is not None and waiting.last_digit_at is not None:
            # The caller hears the call from the next tick of its clock on.
            self.join_latency.append(self._now() - waiting.last_digit_at + 0.020)

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
                _carrier(Farewell, self._tell_lobby),
                _carrier(AnswerCaller, self._tell_lobby),
                _carrier(Admit, lambda c: self._carry_out(self.controller.handle(c))),
                _carrier(KeyPressed, lambda c: self._carry_out(self.controller.handle(c))),
                _carrier(lobby.Refuse, self._refuse),
                _carrier(lobby.Ring, self._ring),
                _carrier(lobby.ReadDialPlan, self._read_dial_plan),
                _carrier(lobby.Answer, self._answer),
                _carrier(lobby.Play, self._play),
                _carrier(lobby.Silence, self._silence),
                _carrier(lobby.WhisperTo, self._whisper_to),
                _carrier(lobby.MatchPasscode, self._match),
                _carrier(lobby.StartReplay, self._start_replay),
                _carrier(lobby.ReplayKey, self._replay_key),
                _carrier(lobby.HangUp, self._hang_up),
                _carrier(Disconnect, self._disconnect),
                _carrier(RecordAudit, self._record_audit),
                _carrier(Changed, lambda c: self._changed(c.event_id)),
            )
        )

    def stats(self) -> BridgeStats:
        lateness = [t for clock in self._clocks.values() for t in clock.lateness]
        lobby = list(self._lobby_clock.lateness) if self._lobby_clock is not None else []
        return BridgeStats(
            legs=len(self.legs),
            legs_in_conferences=sum(
                1 for call_id in self.legs if self.lobby.stage(call_id) is Stage.CONFERENCE
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
        self._invites[call.call_id] = (endpoint, call)
        invite = lobby.Invite(
            call.call_id, call.request, call.source[0], normalise_dialled(call.dialled), call.caller
        )
        try:
            self._tell_lobby(invite)
        finally:
            self._invites.pop(call.call_id, None)

    def _refuse(self, command: lobby.Refuse) -> None:
        endpoint, _ = self._invites[command.call_id]
        endpoint.reject(command.call_id, command.status, self._now(), command.reason)

    def _ring(self, command: lobby.Ring) -> None:
        """A leg for the INVITE (a port, the SDP answer), then 180 Ringing."""
        endpoint, call = self._invites[command.call_id]
        now = self._now()
        local_host = self.config.sip_host
        try:
            sock, port = self.ports.bind(local_host)
        except PortRangeExhausted:
            self._tell_lobby(lobby.Gone(call.call_id, "no port"))
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
                now=now,
                rtp=rtp,
            )
        except Exception as error:
            # Whatever went wrong, the port goes back: ports in use equal live legs.
            if rtp is not None:
                rtp.close()  # stops watching the socket, then closes it
            sock.close()
            self.ports.release(port)
            self._tell_lobby(lobby.Gone(call.call_id, "unreadable offer"))
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

    def _answer(self, command: lobby.Answer) -> None:
        leg = self.legs.get(command.call_id)
        endpoint = self._endpoint_of.get(command.call_id)
        if leg is None or endpoint is None:
            return
        now = self._now()
        leg.last_rx = now
        endpoint.answer(leg.call_id, leg.negotiated.answer, now)
        driver = self._drivers.get(endpoint)
        if driver is not None:
            driver.flush()

    def _read_dial_plan(self, command: lobby.ReadDialPlan) -> None:
        assert self.loop is not None
        self.loop.create_task(self._feed_dial_plan(command.call_id, command.dialled))

    async def _feed_dial_plan(self, call_id: str, dialled: str | None) -> None:
        """Tell a new leg how long the codes on its number are (its IVR ends a code on them)."""
        try:
            plan = await self._dial_plan(dialled)
        except Exception:  # the IVR still ends codes on '#', silence or 12 digits
            log.exception("could not read the dial plan of %s", dialled)
            return
        self._tell_lobby(lobby.DialPlanRead(call_id, plan.event_ids, plan.code_lengths))

    def _match(self, command: lobby.MatchPasscode) -> None:
        assert self.loop is not None
        self.loop.create_task(self._lookup(command))

    async def _lookup(self, command: lobby.MatchPasscode) -> None:
        """What the caller's passcode opens, and what admitting them needs to know."""
        match = await self._match_passcode(command.dialled, command.passcode)
        found: lobby.Found | None = None
        if match is not None:
            record = await self._join_record(match.event_id)
            ready: datetime | None = None
            if match.role == "replay":
                recording = await asyncio.to_thread(self.replay_recording, match.event_id)
                ready = recording[1] if recording is not None else None
            found = lobby.Found(match.event_id, match.role, record, ready)
        self._tell_lobby(lobby.Matched(command.call_id, found))

    def _play(self, command: lobby.Play) -> None:
        leg = self.legs.get(command.call_id)
        if leg is None:
            return
        # Off the call's mix (a farewell), onto the lobby clock.
        leg.participant = None
        self._lobby_legs[leg.call_id] = leg
        leg.prompt.start(command.prompt, command.barge_in)

    def _silence(self, command: lobby.Silence) -> None:
        leg = self.legs.get(command.call_id)
        if leg is not None:
            leg.prompt.stop()

    def _whisper_to(self, command: lobby.WhisperTo) -> None:
        member = self.controller.member(command.call_id)
        conference = self.conferences.get(member.event_id) if member is not None else None
        if member is not None and conference is not None:
            self._whisper(conference, member.id, command.prompt)

    def _hang_up(self, command: lobby.HangUp) -> None:
        leg = self.legs.get(command.call_id)
        if leg is not None:
            self._hangup(leg, command.reason, self._now())

    def _tell_lobby(self, event: lobby.Event) -> None:
        """Tell the lobby what happened; carry out what it decides."""
        self._carry_out(self.lobby.handle(event, self._now(), datetime.now(UTC)))

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

    # -- the guessing guard ------------------------------------------------------------

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
            for alert in self.lobby.alerts.for_event(event_id)
        ]

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
        def tick(n: int) -> None:
            conference.tick(self._now(), n)

        return tick

    # -- keys ------------------------------------------------------------------------------------

    def _digit(self, leg: CallLeg, digit: str, now: float) -> None:
        self._tell_lobby(lobby.Key(leg.call_id, digit))

    def _whisper(self, conference: Conference, participant_id: str, prompt: PromptName) -> None:
        conference.whisper(participant_id, iter(self.library.frames(prompt)))

    def _changed(self, event_id: int) -> None:
        self.versions[event_id] = self.versions.get(event_id, 0) + 1

    # -- the lobby clock: prompts for legs that are not in a conference ---------------------

    def _lobby_tick(self, n: int) -> None:
        now = self._now()
        for leg in list(self._lobby_legs.values()):
            if leg.replay is not None:
                # Each replay caller is at their own place in the recording.
                leg.send_pcm(leg.replay.next_frame(now), now)
                self._replay_actions(leg)
                continue
            was_playing = leg.prompt.playing
            leg.send_pcm(leg.prompt.next_frame(), now)
            if was_playing and not leg.prompt.playing:
                self._tell_lobby(lobby.PromptDone(leg.call_id))
        self._carry_out(self.lobby.handle_timer(now, datetime.now(UTC)))

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

    def _start_replay(self, command: lobby.StartReplay) -> None:
        leg = self.legs.get(command.call_id)
        if leg is None:
            return
        leg.participant = None
        self._lobby_legs[leg.call_id] = leg
        assert self.loop is not None
        self.loop.create_task(self._load_replay(leg, command.event_id))

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
        if self.legs.get(leg.call_id) is not leg:
            return
        if samples is None:
            self._tell_lobby(lobby.ReplayMissing(leg.call_id))
            return
        leg.replay = ReplayPlayback(
            samples, self.library, ReplayRules(intro=PromptName.REPLAY_WELCOME)
        )

    def _replay_key(self, command: lobby.ReplayKey) -> None:
        leg = self.legs.get(command.call_id)
        if leg is None or leg.replay is None:
            return
        with contextlib.suppress(ValueError):  # not a keypad digit: nothing to do
            leg.replay.press(command.digit, self._now())
        self._replay_actions(leg)

    def _replay_actions(self, leg: CallLeg) -> None:
        playback = leg.replay
        if playback is None:
            return
        while (action := playback.next_action()) is not None:
            if isinstance(action, replay_phone.Hangup):
                leg.replay = None
                self._tell_lobby(lobby.ReplayOver(leg.call_id, action.reason.value))
                return

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
        self._tell_lobby(lobby.Gone(call_id, reason))
        if leg is None:
            return
        self.ports.release(leg.local_port)
        self._foreign_dropped += leg.stats.foreign
        self._carry_out(self.controller.handle(LeftCall(call_id, reason, datetime.now(UTC))))

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
            self._tell_lobby(lobby.HeardCheck({c: leg.last_rx for c, leg in self.legs.items()}))

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
