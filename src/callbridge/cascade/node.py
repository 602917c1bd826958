"""A bridge node of a cascade: the origin of an event's call, or one of its edges.

``OriginNode`` and ``EdgeNode`` plug into a ``bridge.service.Bridge`` (its
``Plug``): the cascade's controller (``cascade.controller``), the bus
(``cascade.bus``), one media port (``cascade.feed``), a heartbeat row
(``store.nodes``), and the node's conferences. They add carriers for the
commands only a cascade has (``Tell``) and wrap the bridge's own carriers of
a few others; the decisions stay in the controllers.

The origin mixes, records and packages the webcast, as a standalone node
does; an edge's callers are participants of its conference too (listed,
logged, mixed while they may talk), but the listeners among them cost the
origin nothing: the mix goes once to each edge.

An edge answers callers and checks passcodes against the shared store as
any node does; it records nothing and packages no webcast.

An origin process draws an incarnation when it starts and announces it
(``OriginUp``); the edges tell a new incarnation their callers again, so an
origin restarted mid-call has every edge's callers back on its console and
in its mix within a second of its bus being up (``cascade.controller``).

A second origin is a hot standby (``serve --standby``): every origin drives
the lease (``cascade.leading``); only the active one sends media, tells the
edges and writes the call log, while a standby mixes, records and packages
the same call and keeps its decisions to itself. The active origin tells
the standby the moderator's actions as they happen (``Replicated``), and an
origin that comes up mid-call everything done so far (``_send_log``). The
edges send their callers' audio to every origin and follow the one with the
highest epoch (``cascade.origins``).

Over the house's ~500 lines: the origin and the edge are two halves of one
protocol, each handler beside the one that answers it; the decisions are in
the pure modules named above, and what is left here is their wiring.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import callbridge.bridge.commands as cmd
from callbridge.bridge.config import BridgeConfig, Carriers, Host
from callbridge.bridge.control import BridgeError
from callbridge.bridge.controller import CallController
from callbridge.bridge.lobby import Stage
from callbridge.bridge.media_plane import HoldMusic, plain_conference
from callbridge.bridge.service import Bridge
from callbridge.cascade.bus import Bus
from callbridge.cascade.controller import (
    EdgeController,
    FromOrigin,
    OriginController,
    remote_call_id,
)
from callbridge.cascade.feed import (
    SUBSCRIPTION_TTL,
    Address,
    MediaPort,
    MixFeed,
    RemoteLeg,
    Uplink,
    line_ssrc,
    mix_ssrc,
)
from callbridge.cascade.leading import LeaseDriver
from callbridge.cascade.lease import Change, Lease, LeaseState
from callbridge.cascade.messages import (
    EVERYONE,
    ORIGIN,
    Active,
    CallState,
    Directive,
    Feeding,
    Joined,
    Keyed,
    Left,
    Message,
    OriginUp,
    Replicated,
    Subscribe,
    Tell,
    Unsubscribe,
    valid_node_id,
)
from callbridge.cascade.origins import Origins
from callbridge.cascade.relayed import RelayedConference
from callbridge.media.conference import Audience, Conference, ConferenceState, Participant
from callbridge.media.mixer import Pcm
from callbridge.rtp import codecs
from callbridge.store.calllog import CallLog
from callbridge.store.coverage import ReplayCoverage
from callbridge.store.events import EventStore
from callbridge.store.lease import LeaseStore
from callbridge.store.nodes import HEARTBEAT_INTERVAL, NodeStore

log = logging.getLogger(__name__)

ROLES = ("standalone", "origin", "edge")
# An edge asks for the mix again this often while it has callers on the call.
SUBSCRIBE_INTERVAL = 1.0
# The active origin says so on the bus this often (and as it takes the lease).
ACTIVE_INTERVAL = 1.0
STANDBY_PATIENCE = 2.0
# An origin that came up mid-call is told what was done this long after its
# OriginUp: the edges' callers, told at once, must be on its call first.
LOG_DELAY = 1.0
MAX_LOG = 20_000
# What a standby origin keeps to itself: the active one writes and tells these.
_ACTIVE_ONLY = (Tell, cmd.RecordAudit, cmd.SetQuestionState, cmd.SetEventState)


def default_node_id(sip_port: int) -> str:
    """``hostname-port``, cut to a node id's 32 characters."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return valid_node_id(f"{host[: 31 - len(str(sip_port))] or 'node'}-{sip_port}")


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    role: str  # "origin" or "edge"
    db_url: str
    # What seals the bus's messages (cascade.seal); the media plane's alone.
    bus_key: bytes = field(repr=False)
    # On the origin: each edge's node id → the host its mix is sent to, as the
    # operator registered it (``serve --edge``); a Subscribe names only the port.
    edges: Mapping[str, str] = field(default_factory=dict)
    # An origin started as the standby (``serve --standby``): it takes no free
    # lease for its first ``STANDBY_PATIENCE`` seconds.
    standby: bool = False


class _CascadeNode:
    """What origin and edge share: the bus, the media port, the heartbeat."""

    is_origin = False
    controller: CallController

    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        self._bridge: Host | None = None
        self._started_at = datetime.now(UTC)

    @property
    def bridge(self) -> Host:
        assert self._bridge is not None, "attach the node to its bridge first"
        return self._bridge

    def attach(self, bridge: Host, defaults: Carriers) -> Carriers:
        self._bridge = bridge
        self.nodes = NodeStore(bridge.events.database)
        self.bus = Bus(
            self.node.db_url,
            self.node.node_id,
            self.is_origin,
            self._on_bus,
            self._on_listening,
            key=self.node.bus_key,
        )
        self.port = MediaPort(self._on_frame, self._trusted, bridge.media.now)
        return {Tell: lambda command: self.bus.send(command.to, command.message)}

    def conference(
        self, event_id: int, hold_music: HoldMusic, audience: Callable[[], Audience]
    ) -> Conference:
        return plain_conference(event_id, hold_music, audience)

    async def start(self) -> None:
        await self.port.open(self.bridge.config.sip_host)
        self.bus.start()
        self.bridge.tasks.append(asyncio.create_task(self._heartbeat(), name="node-heartbeat"))
        log.info(
            "cascade %s %s: media on %s:%d", self.node.role, self.node.node_id, *self.port.address
        )

    async def stop(self) -> None:
        await self.bus.stop()

    def counters(self) -> dict[str, int]:
        """The bus's counters (``cascade.bus.BusStats``), for the bridge's stats."""
        return self.bus.stats.counters()

    def media_counters(self) -> dict[str, int]:
        """The media port's counters (``cascade.feed.PortStats``), for the metrics."""
        return {f"media_{name}": value for name, value in asdict(self.port.stats).items()}

    def close(self) -> None:
        self.port.close()

    def _now(self) -> float:
        return self.bridge.media.now()

    def _callers(self) -> int:
        lobby = self.bridge.lobby
        return sum(
            1 for call_id in self.bridge.media.legs if lobby.stage(call_id) is Stage.CONFERENCE
        )

    async def _heartbeat(self) -> None:
        sip = f"{self.bridge.config.sip_host}:{self.bridge.sip_port}"
        while True:
            try:
                await self.bridge.lookups.run(
                    self.nodes.beat,
                    self.node.node_id,
                    self.node.role,
                    sip,
                    self._callers(),
                    self._started_at,
                    datetime.now(UTC),
                )
            except Exception:
                log.exception("the heartbeat row could not be written")
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    def _on_bus(self, sender: str, message: Message) -> None:
        raise NotImplementedError

    def _on_listening(self) -> None:
        """The bus listens (again): what came meanwhile was lost."""

    def _on_frame(self, ssrc: int, payload: bytes, source: Address, now: float) -> None:
        raise NotImplementedError

    def _trusted(self, host: str) -> bool:
        raise NotImplementedError


class OriginNode(_CascadeNode):
    """The node that mixes the call, with every edge's callers in its controller."""

    is_origin = True

    def __init__(self, node: NodeConfig) -> None:
        super().__init__(node)
        # This origin as the edges know it: a new one each time its bus starts
        # listening (``_on_listening``).
        self.incarnation = secrets.token_hex(8)
        self.origin_controller = OriginController()
        self.controller = self.origin_controller
        self.feeds: dict[int, MixFeed] = {}
        self._remote: dict[int, RemoteLeg] = {}  # by the SSRC of the caller's audio
        self._edge_hosts: dict[str, str] = {}  # node → the host its media comes from
        self._last_heard: dict[str, float] = {}  # node → when it last subscribed to a feed
        self._misnamed: set[tuple[str, str]] = set()  # (node, host) warned of
        # Who is active (``cascade.lease``): the holder names this process, not
        # only the node, so a restarted one takes the lease as a new holder.
        self.lease = Lease(
            f"{node.node_id}/{secrets.token_hex(4)}",
            patience=STANDBY_PATIENCE if node.standby else 0.0,
        )
        self.takeovers = 0
        # What the moderator did on each call, and the keys its callers pressed, in
        # order: sent to an origin that comes up mid-call (``_send_log``).
        self._log: dict[int, list[Replicated]] = {}

    @property
    def active(self) -> bool:
        return self.lease.active

    def attach(self, bridge: Host, defaults: Carriers) -> Carriers:
        carriers = super().attach(bridge, defaults)
        self.leading = LeaseDriver(self.lease, LeaseStore(self.node.db_url), self._lease_changed)
        # Nothing leaves before the store says this origin is the active one.
        self.port.sending = False
        join_here, leave_here = defaults[cmd.JoinConference], defaults[cmd.LeaveConference]
        tell = carriers[Tell]

        def tell_if_active(command: Tell) -> None:
            if isinstance(command.message, Replicated):
                self._remember(command.message)
            if self.active:
                tell(command)

        def if_active(carry: Callable[[Any], object]) -> Callable[[Any], object]:
            def carried(command: object) -> object:
                return carry(command) if self.active else None

            return carried

        def join_anywhere(command: cmd.JoinConference) -> None:
            member = self.controller.member(command.call_id)
            if member is None or member.node is None:
                join_here(command)
                return
            node = member.node
            feed = self._feed(command.event_id)
            leg = RemoteLeg(command.participant_id, self.port, lambda: feed.address(node))
            self._remote[line_ssrc(command.participant_id)] = leg
            self.bridge.media.join_elsewhere(
                leg, command.event_id, command.participant_id, member.may_talk
            )
            self.bridge.outputs.annotate(member)

        def leave_anywhere(command: cmd.LeaveConference) -> None:
            self._remote.pop(line_ssrc(command.participant_id), None)
            leave_here(command)

        return {
            **carriers,
            cmd.JoinConference: join_anywhere,
            cmd.LeaveConference: leave_anywhere,
            Tell: tell_if_active,
            cmd.RecordAudit: if_active(defaults[cmd.RecordAudit]),
            cmd.SetQuestionState: if_active(defaults[cmd.SetQuestionState]),
        }

    def conference(
        self, event_id: int, hold_music: HoldMusic, audience: Callable[[], Audience]
    ) -> Conference:
        conference = plain_conference(event_id, hold_music, audience)
        conference.taps.append(self._feed(event_id))
        return conference

    async def start(self) -> None:
        await super().start()
        self.bridge.outputs.on_replay = self._replay_packaged
        self.leading.start()
        self.bridge.tasks.append(asyncio.create_task(self._watch_edges(), name="origin-edges"))
        self.bridge.tasks.append(asyncio.create_task(self._say_active(), name="origin-active"))

    async def stop(self) -> None:
        await self.leading.stop()
        await super().stop()

    def counters(self) -> dict[str, int]:
        return {
            **super().counters(),
            "lease_epoch": self.lease.epoch,
            "lease_active": int(self.active),
            "lease_takeovers": self.takeovers,
            "lease_failed_tries": self.leading.failed_tries,
        }

    def _lease_changed(self, change: Change) -> None:
        """Active: send, decide, say so at once. Standby: send nothing, keep decisions here."""
        self.port.sending = self.active
        if change.after is LeaseState.ACTIVE and change.before is not LeaseState.LAPSED:
            if change.before is LeaseState.STANDBY:
                self.takeovers += 1
            self.bus.send(EVERYONE, Active(change.epoch, self.incarnation))
            # The edges learn of the calls' state from the new active origin too.
            for event_id, call in self.controller.calls.items():
                if call.state is ConferenceState.LIVE:
                    self.bus.send(EVERYONE, CallState(event_id, "live"))
        log.warning(
            "origin %s: lease %s -> %s (epoch %d, held by %s)",
            self.node.node_id, change.before.value, change.after.value, change.epoch,
            self.lease.holder,
        )  # fmt: skip

    async def _say_active(self) -> None:
        while True:
            await asyncio.sleep(ACTIVE_INTERVAL)
            if self.active:
                self.bus.send(EVERYONE, Active(self.lease.epoch, self.incarnation))

    def _replay_packaged(self, event_id: int, seconds: float) -> None:
        """Say how much of the call this origin's replay holds: the one with the most serves it."""
        coverage = ReplayCoverage(self.bridge.events.database)

        async def record() -> None:
            try:
                await self.bridge.lookups.run(coverage.record, event_id, self.node.node_id, seconds)
            except Exception:
                log.exception("event %d: the replay's coverage was not recorded", event_id)

        self.bridge.tasks.append(asyncio.create_task(record(), name="replay-coverage"))

    def _remember(self, message: Replicated) -> None:
        log_ = self._log.setdefault(message.event_id, [])
        if len(log_) < MAX_LOG:
            log_.append(message)

    def _send_log(self, node: str) -> None:
        """Tell an origin that came up mid-call what it missed: it heard no moderator's action
        and no key before, and the edges tell it only who is on the call."""
        if not self.active:
            return
        for event_id, entries in list(self._log.items()):
            call = self.controller.call(event_id)
            if call is None or call.state is not ConferenceState.LIVE:
                continue
            for entry in entries:
                self.bus.send(node, entry)
            log.info("told %s the %d things done on event %d", node, len(entries), event_id)

    def _replicated(self, sender: str, message: Replicated) -> None:
        """The active origin's moderator did this: the standby does it too, keeping it here."""
        if self.active:
            log.warning("%s replicated %s to an active origin: ignored", sender, message.what)
            return
        try:
            commands = self.origin_controller.replicated(message)
        except (BridgeError, ValueError) as error:
            log.warning("a replicated %s from %s was refused here: %s", message.what, sender, error)
            return
        # Kept for an origin that comes up later (this controller's Tell of it is not
        # carried out: a standby tells nothing).
        self._remember(message)
        kept = [c for c in commands if not isinstance(c, _ACTIVE_ONLY)]
        asyncio.get_running_loop().create_task(self.bridge.carry_out_awaiting(kept))

    def _on_listening(self) -> None:
        """Announce a new incarnation once the bus listens: the edges' answers must find it.

        A process just started knows no edge's callers; one whose connection
        dropped may have missed some joins. Either way every edge tells its
        callers again, and those already known are no news.
        """
        self.incarnation = secrets.token_hex(8)
        self.bus.send(EVERYONE, OriginUp(self.incarnation))
        log.info("origin %s is incarnation %s", self.node.node_id, self.incarnation)

    async def _watch_edges(self) -> None:
        """An edge silent on the bus for ``SUBSCRIPTION_TTL`` (dead, cut off) loses its callers.

        Its callers cannot be reached any more: they leave the origin's call
        (console, call log) as a caller whose leg timed out does.
        """
        while True:
            await asyncio.sleep(SUBSCRIBE_INTERVAL)
            now = self._now()
            for node, seen in list(self._last_heard.items()):
                if now - seen <= SUBSCRIPTION_TTL:
                    continue
                del self._last_heard[node]
                remote = self.origin_controller.remote
                gone = [key for key, (where, _) in remote.items() if where == node]
                log.warning("%s went silent on the bus: its %d callers are lost", node, len(gone))
                at = datetime.now(UTC)
                for call_id in gone:
                    left = cmd.LeftCall(call_id, f"lost with node {node}", at, lost=True)
                    self.bridge.carry_out(self.controller.handle(left))

    def _feed(self, event_id: int) -> MixFeed:
        feed = self.feeds.get(event_id)
        if feed is None:
            feed = self.feeds[event_id] = MixFeed(event_id, self.port, self._now)
        return feed

    def _on_bus(self, sender: str, message: Message) -> None:
        now = datetime.now(UTC)
        if isinstance(message, Subscribe):
            # The mix goes only to a host the operator registered for the
            # sender, whatever host the message names.
            edge_host = self.node.edges.get(sender)
            if edge_host is None:
                self.bus.refuse("unregistered", f"{sender} is no registered edge (serve --edge)")
                return
            if message.host != edge_host and (sender, message.host) not in self._misnamed:
                self._misnamed.add((sender, message.host))
                log.warning("%s named %s; its mix goes to %s", sender, message.host, edge_host)
            self._edge_hosts[sender] = edge_host
            self._feed(message.event_id).subscribe(sender, (edge_host, message.port), self._now())
            self._last_heard[sender] = self._now()
            host, port = self.port.address
            self.bus.send(
                sender,
                Feeding(
                    message.event_id, host, port, self.incarnation, self.lease.epoch, self.active
                ),
            )
            call = self.controller.call(message.event_id)
            if self.active and call is not None and call.state is ConferenceState.LIVE:
                self.bus.send(sender, CallState(message.event_id, "live"))
        elif isinstance(message, Active):
            self.leading.heard(message.epoch, sender)
        elif isinstance(message, Replicated):
            self._replicated(sender, message)
        elif isinstance(message, Unsubscribe):
            self._feed(message.event_id).drop(sender)
        elif isinstance(message, Joined):
            self.bridge.carry_out(self.origin_controller.joined(sender, message, now))
        elif isinstance(message, Keyed):
            call_id = remote_call_id(sender, message.participant_id)
            member = self.controller.member(call_id)
            if member is not None:
                self._remember(
                    Replicated(member.event_id, "key", call_id, now.timestamp(), message.key)
                )
            self.bridge.carry_out(self.controller.handle(cmd.KeyPressed(call_id, message.key, now)))
        elif isinstance(message, OriginUp) and sender not in self.node.edges:
            # Another origin came up: once the edges have told it their callers, what
            # was done on the call so far.
            asyncio.get_running_loop().call_later(LOG_DELAY, self._send_log, sender)
        elif isinstance(message, Left):
            call_id = remote_call_id(sender, message.participant_id)
            self.bridge.carry_out(
                self.controller.handle(cmd.LeftCall(call_id, message.reason, now))
            )

    def _trusted(self, host: str) -> bool:
        return host in self._edge_hosts.values()

    def _on_frame(self, ssrc: int, payload: bytes, source: Address, now: float) -> None:
        leg = self._remote.get(ssrc)
        if leg is not None:
            leg.receive(payload)


class EdgeNode(_CascadeNode):
    """A node that answers listeners and relays the origin's mix to them."""

    def __init__(self, node: NodeConfig) -> None:
        super().__init__(node)
        self.edge_controller = EdgeController(self.node.node_id)
        self.controller = self.edge_controller
        # The origins heard of, and the one whose mix plays (``cascade.origins``).
        self.origins = Origins(SUBSCRIPTION_TTL)
        self._origin_heard: float | None = None  # when a Feeding last came
        self._mixes: dict[int, int] = {}  # SSRC of an event's mix → event id
        self._lines: dict[int, tuple[int, str]] = {}  # SSRC of a caller's line → (event, id)

    def attach(self, bridge: Host, defaults: Carriers) -> Carriers:
        carriers = super().attach(bridge, defaults)
        self.port.wanted = self._wanted
        self.uplink = Uplink(self.port)
        join_here, leave_here = defaults[cmd.JoinConference], defaults[cmd.LeaveConference]

        def join(command: cmd.JoinConference) -> None:
            join_here(command)
            self._lines[line_ssrc(command.participant_id)] = (
                command.event_id,
                command.participant_id,
            )
            self._subscribe(command.event_id)

        def leave(command: cmd.LeaveConference) -> None:
            leave_here(command)
            self._lines.pop(line_ssrc(command.participant_id), None)
            self.uplink.forget(command.participant_id)
            conference = self.bridge.media.conferences.get(command.event_id)
            if conference is not None and not conference.active():
                self.bus.send(ORIGIN, Unsubscribe(command.event_id))

        return {**carriers, cmd.JoinConference: join, cmd.LeaveConference: leave}

    def conference(
        self, event_id: int, hold_music: HoldMusic, audience: Callable[[], Audience]
    ) -> Conference:
        self._mixes[mix_ssrc(event_id)] = event_id
        return RelayedConference(
            event_id, codecs.encoder, hold_music=hold_music, audience=audience, uplink=self._uplink
        )

    async def start(self) -> None:
        await super().start()
        self.bridge.tasks.append(asyncio.create_task(self._subscriptions(), name="edge-subscribe"))

    def _uplink(self, participant: Participant, pcm: Pcm) -> None:
        self.uplink.send(participant.id, pcm)

    def _subscribe(self, event_id: int) -> None:
        host, port = self.port.address
        self.bus.send(ORIGIN, Subscribe(event_id, host, port))

    def _subscribe_all(self) -> None:
        for event_id, conference in list(self.bridge.media.conferences.items()):
            if conference.state is not ConferenceState.ENDED and conference.active():
                self._subscribe(event_id)

    async def _subscriptions(self) -> None:
        while True:
            await asyncio.sleep(SUBSCRIBE_INTERVAL)
            heard = self._origin_heard
            if heard is not None and self._now() - heard > SUBSCRIPTION_TTL:
                log.warning("the origin has not answered for %.0f s", self._now() - heard)
                self._origin_heard = None
                self.edge_controller.origin_silent()
            for node in self.origins.forget_silent(self._now()):
                log.warning("the origin %s went silent", node)
            self.uplink.origins = self.origins.uplinks(self._now())
            self._subscribe_all()

    def _on_bus(self, sender: str, message: Message) -> None:
        now = self._now()
        if isinstance(message, Feeding):
            media = (message.host, message.port)
            self._followed(self.origins.heard(sender, media, message.epoch, message.active, now))
            self._origin_heard = now
        elif isinstance(message, Active):
            self._followed(self.origins.heard(sender, None, message.epoch, True, now))
        elif isinstance(message, OriginUp):
            log.info("the origin %s started as incarnation %s", sender, message.incarnation)
        stale = isinstance(message, Directive | CallState) and not self.origins.is_current_node(
            sender
        )
        if stale:
            # A standby's, or a stale active's (a lower epoch): the followed origin decides.
            self.bus.refuse("superseded", f"a {message.kind} from {sender}, not the active origin")
        elif isinstance(message, Feeding | OriginUp | Directive | CallState):
            commands = self.edge_controller.handle(FromOrigin(message, datetime.now(UTC), sender))
            if commands:
                asyncio.get_running_loop().create_task(self.bridge.carry_out_awaiting(commands))
        if isinstance(message, OriginUp):
            # Ask for the mix at once, not at the next round.
            self._subscribe_all()

    def _followed(self, switched: bool) -> None:
        """After an origin spoke: the uplinks go to every live origin; a switch is logged."""
        self.uplink.origins = self.origins.uplinks(self._now())
        current = self.origins.current
        if not switched or current is None:
            return
        # What each caller hears alone comes numbered by the new origin's own counters.
        for ssrc in self._lines:
            self.port.forget(ssrc)
        log.warning(
            "edge %s now plays origin %s (epoch %d)", self.node.node_id, current.node, current.epoch
        )

    def _wanted(self, ssrc: int, source: Address) -> bool:
        """An event's mix and a caller's line come from the followed origin only."""
        if ssrc in self._mixes or ssrc in self._lines:
            return self.origins.is_current(source)
        return True

    def _trusted(self, host: str) -> bool:
        return host in self.origins.hosts()

    def _on_frame(self, ssrc: int, payload: bytes, source: Address, now: float) -> None:
        event_id = self._mixes.get(ssrc)
        if event_id is not None:
            conference = self.bridge.media.conferences.get(event_id)
            if isinstance(conference, RelayedConference):
                conference.relay_mix(payload, now)
            return
        line = self._lines.get(ssrc)
        if line is not None:
            conference = self.bridge.media.conferences.get(line[0])
            if isinstance(conference, RelayedConference):
                conference.relay_line(line[1], payload, now)


def cascade_bridge(
    config: BridgeConfig, events: EventStore, call_log: CallLog, node: NodeConfig
) -> Bridge:
    """The bridge for ``node``'s role; an edge records nothing and packages no webcast."""
    if node.role == "origin":
        return Bridge(config, events, call_log, plug=OriginNode(node))
    if node.role == "edge":
        config.recordings = None
        config.webcasts = None
        config.transcribe_command = None
        return Bridge(config, events, call_log, plug=EdgeNode(node))
    raise ValueError(f"a cascade node is an origin or an edge, not {node.role!r}")
