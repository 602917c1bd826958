"""Calls the bridge places: "dial a speaker", and later "call me" (glue).

``DialOut.dial(event_id, number, as_role)`` reserves a port and an SDP
offer, and places the INVITE through the outbound trunks in order
(``bridge.trunks.TrunkChooser``: the next one when a trunk times out or
answers 408/5xx). When the callee answers, the leg is made on the reserved
port and handed to the lobby (``lobby.Dialled``), which plays "press 1 to
join" and, on '1', admits the callee as ``as_role`` through the controller,
as a passcode would. The callee's BYE, or ours, ends the leg like any other.

Trunks that register are registered here at start, refreshed by the UAC
core (``sip.uac``), and unregistered at stop. Everything counted is in
``counters()`` (``/api/bridge/stats``'s ``dial_out``); no credential is
ever logged or returned (the trunks' ``repr`` hides them).

"Call me" for a registrant (``bridge.callme``, ``Bridge.call_me``) calls
``dial`` the same way, as REGISTRANT with the registrant it names.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import phonenumbers

from callbridge.bridge import lobby
from callbridge.bridge.commands import AuditKind, CallerKind, RecordAudit, Registrant
from callbridge.bridge.control import BridgeError
from callbridge.bridge.media_plane import MediaPlane
from callbridge.bridge.rtp_transport import PortRangeExhausted
from callbridge.bridge.sip_client import SipClientDriver, resolve, tls_peers
from callbridge.bridge.trunks import Attempt, DialOver, Trunk, TrunkChooser, TrunksFile
from callbridge.events.schema import EventRecord
from callbridge.sip import uac
from callbridge.sip.sdp import SrtpRequired

log = logging.getLogger(__name__)

MAX_DIALS = 200  # dials not yet answered or failed
MAX_KEPT = 1000  # dials whose state is remembered (``state``)


@dataclass
class _Dial:
    dial_id: str
    event_id: int
    number: str
    role: CallerKind
    record: EventRecord
    registrant: Registrant | None = None  # call-me: who they join as (role REGISTRANT)
    call_id: str | None = None  # the attempt in progress
    trunk: str | None = None
    route: uac.Route | None = None
    started: float = 0.0  # time.perf_counter() at the attempt's INVITE


def e164(number: str, countries: tuple[int, ...]) -> str:
    """``number`` as E.164 if it is a valid number of an allowed country; ``BridgeError`` else."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        raise BridgeError(f"{number[:32]!r} is not a phone number in E.164 form (+...)") from None
    if not phonenumbers.is_valid_number(parsed):
        raise BridgeError(f"{number[:32]!r} is not a valid phone number")
    if parsed.country_code not in countries:
        raise BridgeError(f"calls to country code +{parsed.country_code} are not allowed")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class DialOut:
    """The UAC's socket, the trunks, and every dial in progress."""

    def __init__(
        self,
        config: TrunksFile,
        host: str,
        media: MediaPlane,
        record: Callable[[int], Awaitable[EventRecord]],
        tell: Callable[[lobby.Event], None],
        ended: Callable[[str, str], None],
        audit: Callable[[RecordAudit], None],
    ) -> None:
        self.config = config
        self.host = host
        self.media = media
        self.record = record
        self.tell = tell
        self.ended = ended  # the bridge forgets a leg (call_id, reason), sends no BYE
        self.audit = audit  # the call log (the audit trail)
        self.driver: SipClientDriver | None = None
        self.trunks: list[Trunk] = []
        self.chooser = TrunkChooser([])
        self.counts: Counter[str] = Counter()
        # INVITE to 200 of each answered attempt (the last 10,000).
        self.setup_ms: deque[float] = deque(maxlen=10_000)
        self._dials: dict[str, _Dial] = {}
        self._legs: dict[str, str] = {}  # answered: dial id -> SIP Call-ID
        self._by_call: dict[str, str] = {}  # SIP Call-ID -> dial id
        self._offers: dict[str, bytes] = {}  # our SDP offer of each dial in progress
        # Each dial's state as it goes (the last MAX_KEPT): calling, ringing, answered,
        # failed (with the status and reason), ended. A feature built on ``dial`` ("call
        # me") reads it, or is told of every change by ``on_state``.
        self._states: OrderedDict[str, str] = OrderedDict()
        self.on_state: Callable[[str, str], None] | None = None

    async def start(
        self, loop: asyncio.AbstractEventLoop, sip_port: int, sip_tls_port: int | None = None
    ) -> None:
        """Resolve the trunks, open the UAC's socket, register the trunks that register.

        A registration's Contact is the bridge's SIP endpoint (``sip_port``;
        over TLS its TLS port, ``sip_tls_port``): the calls a trunk delivers
        to it are dial-ins like any other (allow the trunk's network with
        ``--trunk``).
        """
        self.trunks = await resolve(self.config.trunk, loop)
        self.chooser = TrunkChooser(self.trunks)
        allowed = frozenset(a for t in self.trunks for a in t.addresses)
        self.driver = SipClientDriver(
            self.host, allowed, self._on_event, loop, register_contact=(self.host, sip_port)
        )
        if sip_tls_port is not None:
            self.driver.register_tls_contact = (self.host, sip_tls_port)
        elif any(
            t.spec.registers and r.transport == "TLS" for t in self.trunks for r in t.routes()
        ):
            log.warning(
                "a trunk registers over TLS but the bridge has no --sip-tls-port: the calls it "
                "delivers come to the plain SIP port"
            )
        self.driver.tcp_peers = frozenset(
            r.address for t in self.trunks for r in t.routes() if r.reliable
        )
        self.driver.tls_peers = tls_peers(self.trunks)
        await self.driver.open()
        client = self._client()
        for trunk in self.trunks:
            if trunk.spec.registers:
                route = trunk.routes()[0]
                client.register(trunk.spec.name, route, trunk.spec.register_expires, loop.time())
        self.driver.flush()

    def stop(self) -> None:
        if self.driver is None:
            return
        client = self._client()
        client.unregister_all(self.driver.now())
        self.driver.flush()
        self.driver.close()

    def _client(self) -> uac.SipClient:
        assert self.driver is not None and self.driver.client is not None
        return self.driver.client

    # -- dialling -----------------------------------------------------------------------

    async def dial(
        self,
        event_id: int,
        number: str,
        as_role: CallerKind,
        actor: str = "system",
        registrant: Registrant | None = None,
    ) -> str:
        """Call ``number`` for ``event_id``; on '1' they join as ``as_role``. Returns the dial id.

        ``registrant`` (call-me, ``as_role`` REGISTRANT): the callee joins as
        that registrant, named as a personal PIN names them.
        ``BridgeError`` for a number not allowed, no outbound trunk, or too many
        dials at once. The call's progress is in the log and the counters; an
        answered callee is on the console's participants once they press 1.
        """
        if self.driver is None or not self.chooser.candidates:
            raise BridgeError("no outbound trunk is configured (serve --trunks FILE)")
        joins_as = (CallerKind.SPEAKER, CallerKind.LISTENER)
        if (as_role is CallerKind.REGISTRANT) != (registrant is not None) or (
            registrant is None and as_role not in joins_as
        ):
            raise BridgeError(f"a dialled callee joins as a speaker or a listener, not {as_role}")
        number = e164(number, self.config.dial.countries)
        if len(self._dials) >= MAX_DIALS:
            raise BridgeError("too many calls being placed at once")
        record = await self.record(event_id)
        dial_id = f"out-{secrets.token_hex(8)}"
        try:
            offer = self.media.reserve(dial_id)
        except PortRangeExhausted:
            raise BridgeError("no RTP port free for the call") from None
        dial = _Dial(dial_id, event_id, number, as_role, record, registrant)
        self._dials[dial_id] = dial
        self._offers[dial_id] = offer
        self.counts["placed"] += 1
        log.info("dial %s: calling %s for event %d as %s", dial_id, number, event_id, as_role)
        self.audit(
            RecordAudit(
                AuditKind.DIAL,
                datetime.now(UTC),
                event_id,
                caller_id=number,
                role=as_role.value,
                actor=actor,
                detail={"dial_id": dial_id}
                | ({"registrant": registrant.listener_id} if registrant else {}),
            )
        )
        self._next(self.chooser.start(dial_id))
        self.driver.flush()
        return dial_id

    def state(self, dial_id: str) -> str | None:
        """A dial's state: calling, ringing, answered, ``failed: STATUS REASON``, ended."""
        return self._states.get(dial_id)

    def _set_state(self, dial_id: str, state: str) -> None:
        self._states[dial_id] = state
        self._states.move_to_end(dial_id)
        while len(self._states) > MAX_KEPT:
            self._states.popitem(last=False)
        if self.on_state is not None:
            self.on_state(dial_id, state)

    def _next(self, step: Attempt | DialOver) -> None:
        if isinstance(step, DialOver):
            self._over(step)
            return
        dial = self._dials[step.dial_id]
        self._set_state(dial.dial_id, "calling")
        dial.call_id, dial.trunk, dial.route = step.call_id, step.trunk, step.route
        # Each trunk its own offer: its SRTP policy and codecs, and a fresh key for each
        # carrier.
        spec = next((t.spec for t in self.trunks if t.spec.name == step.trunk), None)
        if spec is not None:
            self._offers[dial.dial_id] = self.media.offer(dial.dial_id, spec.srtp, spec.codecs)
        # perf_counter, not the loop's clock: uvloop's counts whole milliseconds.
        dial.started = time.perf_counter()
        self._by_call[step.call_id] = step.dial_id
        log.info(
            "dial %s: INVITE through trunk %s (%s)", dial.dial_id, step.trunk, step.route.address
        )
        self._client().invite(
            step.call_id,
            step.route,
            dial.number,
            self._offers[dial.dial_id],
            self._now(),
            ring_timeout=self.config.dial.ring_timeout,
        )

    def _over(self, over: DialOver) -> None:
        dial = self._dials.pop(over.dial_id, None)
        self._offers.pop(over.dial_id, None)
        self.media.release(over.dial_id)
        self.counts["failed"] += 1
        self._set_state(over.dial_id, f"failed: {over.status} {over.reason}")
        if over.auth_failed:
            self.counts["auth_failed"] += 1
        number = dial.number if dial is not None else "?"
        log.warning("dial %s to %s failed: %d %s", over.dial_id, number, over.status, over.reason)
        if dial is not None:
            detail: dict[str, object] = {"dial_id": over.dial_id, "status": over.status}
            detail["reason"] = over.reason
            self.audit(
                RecordAudit(
                    AuditKind.DIAL_FAILED,
                    datetime.now(UTC),
                    dial.event_id,
                    caller_id=number,
                    detail=detail,
                )
            )

    def hangup(self, call_id: str) -> bool:
        """End a dialled leg or dial from our side (BYE or CANCEL); False: not one of ours."""
        sip_id = self._legs.pop(call_id, None)
        if sip_id is not None:
            self._by_call.pop(sip_id, None)
            self._set_state(call_id, "ended")
        else:
            dial = self._dials.get(call_id)
            sip_id = dial.call_id if dial is not None else None
        if sip_id is None or self.driver is None:
            return False
        self._client().hangup(sip_id, self._now())
        self.driver.flush()
        return True

    def cancel(self, dial_id: str) -> None:
        """Give up a dial not answered yet (it fails as cancelled)."""
        self.hangup(dial_id)

    def _now(self) -> float:
        assert self.driver is not None
        return self.driver.now()

    # -- the UAC's events -------------------------------------------------------------------

    def _on_event(self, event: uac.Event) -> None:
        if isinstance(event, uac.Registered):
            self.counts["registered"] += 1
            log.info("trunk %s: registered for %d s", event.name, event.expires)
        elif isinstance(event, uac.RegistrationFailed):
            self.counts["registrations_failed"] += 1
            if event.auth_failed:
                self.counts["auth_failed"] += 1
            log.warning(
                "trunk %s: registration failed: %d %s", event.name, event.status, event.reason
            )
        elif isinstance(event, uac.Ringing):
            self.counts["ringing"] += 1
            dial_id = self._by_call.get(event.call_id)
            if dial_id is not None:
                self._set_state(dial_id, "ringing")
        elif isinstance(event, uac.Answered):
            self._answered(event)
        elif isinstance(event, uac.Failed):
            self._by_call.pop(event.call_id, None)
            step = self.chooser.failed(event)
            if step is None:
                return
            if isinstance(step, Attempt):
                self.counts["failovers"] += 1
                log.warning(
                    "dial %s: trunk failed (%d %s); trying the next",
                    step.dial_id,
                    event.status,
                    event.reason,
                )
            self._next(step)
        elif isinstance(event, uac.ReInvite):
            self._reinvite(event)
        elif isinstance(event, uac.KeyInfo):
            dial_id = self._by_call.get(event.call_id)
            if dial_id is not None:
                self.tell(lobby.Key(dial_id, event.digit))
        elif isinstance(event, uac.Ended):
            dial_id = self._by_call.pop(event.call_id, None)
            if dial_id is not None:
                self._legs.pop(dial_id, None)
                self._set_state(dial_id, "ended")
                self.ended(dial_id, event.reason)

    def _reinvite(self, event: uac.ReInvite) -> None:
        """The callee's new offer (hold, a new address): the leg follows, or 488."""
        dial_id = self._by_call.get(event.call_id)
        try:
            if dial_id is None:
                raise LookupError("no such leg")
            answer = self.media.reinvite(dial_id, event.offer)
        except Exception as error:
            log.info("dial %s: re-INVITE refused: %s", dial_id, error)
            self._client().reject_reinvite(event.call_id, 488)
            return
        self._client().answer_reinvite(event.call_id, answer, self._now())

    def _answered(self, event: uac.Answered) -> None:
        dial_id = self.chooser.answered(event.call_id)
        dial = self._dials.pop(dial_id, None) if dial_id is not None else None
        if dial is None or dial.route is None:
            self._client().hangup(event.call_id, self._now())
            return
        self._offers.pop(dial.dial_id, None)
        self.setup_ms.append(1000 * (time.perf_counter() - dial.started))
        try:
            self.media.connect(
                dial.dial_id, event.answer, dial.number, dial.route.address, self._now()
            )
        except Exception as error:
            log.warning("dial %s: the callee's answer cannot be used: %s", dial.dial_id, error)
            self.media.release(dial.dial_id)
            self._client().hangup(event.call_id, self._now())
            self.counts["failed"] += 1
            if isinstance(error, SrtpRequired):
                self.counts["srtp_refused"] += 1
            self._set_state(dial.dial_id, f"failed: 488 the answer's media cannot be used: {error}")
            return
        self.counts["answered"] += 1
        self._set_state(dial.dial_id, "answered")
        self._legs[dial.dial_id] = event.call_id
        log.info("dial %s: %s answered through %s", dial.dial_id, dial.number, dial.trunk)
        self.tell(
            lobby.Dialled(
                dial.dial_id, dial.event_id, dial.role, dial.record, dial.number, dial.registrant
            )
        )

    # -- counters ---------------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Dials placed, answered, failed (and why), failovers, registrations."""
        out = dict(self.counts)
        if self.driver is not None and self.driver.client is not None:
            stats = self.driver.client.stats
            out["timed_out"] = stats.timed_out
            out["dropped"] = stats.dropped
        return out

    def registrations(self) -> dict[str, str]:
        """Each registering trunk's state (``registered``, ``failed``, ``registering``)."""
        if self.driver is None or self.driver.client is None:
            return {}
        client = self.driver.client
        return {
            t.spec.name: client.registration(t.spec.name)[0].value
            for t in self.trunks
            if t.spec.registers
        }
