"""The UAC side of the SIP core: calls we place through a trunk, registrations we keep.

``SipClient`` is sans-IO like ``sip.endpoint.SipEndpoint`` (the UAS side):
the glue (``bridge.sip_client``) calls ``receive_datagram(data, addr, now)``,
sends what ``datagrams_to_send()`` returns, delivers ``next_event()`` and
calls ``handle_timer(now)`` at ``get_timer()``. It has a socket of its own,
so a callee's in-dialog requests (BYE) come back here by our Contact.

Calls (``invite``): an INVITE client transaction (``ClientInviteTransaction``:
Timer A, Timer B or the trunk's shorter limit, the ACK of a 3xx-6xx); a
401/407 answered once with digest credentials (``sip.digest``; again only
when the server says the nonce was ``stale``), so a wrong password fails at
once and clearly; the 2xx ACKed (and ACKed again when repeated) along the
dialog's route set (the 2xx's Record-Route, reversed); CANCEL once the
callee rings (never before a provisional, RFC 3261 9.1), or when it rings
longer than ``ring_timeout``; BYE from our side; the callee's BYE answered,
their re-INVITE handed on (``ReInvite``, ``answer_reinvite``) and their SIP
INFO keys too (``KeyInfo``).

Registrations (``register``): REGISTER with Expires, refreshed at half the
granted time, challenged and answered like an INVITE, 423 answered with the
server's Min-Expires, a failure retried every ``RETRY_AFTER`` seconds.

Credentials are used to hash a response and for nothing else: no event,
log line or repr carries a password. Requests come only from the trunks'
addresses (``allowed``); anything else is dropped and counted.

(Over the ~500 lines of the style guide: calls and registrations share one
socket's transactions, the routing of responses by branch and the digest
answers; registrations could move to a module of their own that borrows
those, which is the next step if either side grows.)
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field

from callbridge.sip import digest
from callbridge.sip.dialog import new_branch, new_tag
from callbridge.sip.endpoint import dtmf_info
from callbridge.sip.errors import SipError
from callbridge.sip.message import (
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    parse_message,
)
from callbridge.sip.transaction import (
    T1,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
)

log = logging.getLogger(__name__)

Address = tuple[str, int]

MAX_CALLS = 1000  # calls placed and not yet over
RETRY_AFTER = 30.0  # a failed registration is tried again this much later
MIN_REFRESH = 5.0  # never refresh a registration more often than this


@dataclass(frozen=True)
class Credentials:
    """A trunk account. The password is never shown (``repr`` leaves it out)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Route:
    """Where a trunk is and how to reach it (an address, not a name: the glue resolves)."""

    address: Address
    domain: str  # the trunk's host as written, for Request-URIs and To/From
    transport: str = "UDP"
    credentials: Credentials | None = None
    timeout: float = 64 * T1  # no answer at all this long: the trunk is down

    @property
    def reliable(self) -> bool:
        return self.transport.upper() in ("TCP", "TLS")


@dataclass(frozen=True)
class ClientConfig:
    host: str  # our address, in Via and Contact
    port: int
    user_agent: str = "callbridge"
    allowed: frozenset[str] = frozenset()  # source hosts that may send us requests
    # The Contact a REGISTER names: where the trunk sends its calls to us (the
    # UAS endpoint's address); None: this socket.
    register_contact: Address | None = None
    # Over TLS: the UAS endpoint's TLS port (None: ``register_contact``, transport=tls
    # dropped, so the trunk's calls come in over TCP).
    register_tls_contact: Address | None = None


# -- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ringing:
    call_id: str
    status: int


@dataclass(frozen=True)
class Answered:
    """The callee answered (2xx, ACKed): ``answer`` is its SDP."""

    call_id: str
    answer: bytes


@dataclass(frozen=True)
class Failed:
    """The call was not answered: the final status, or 408 when the trunk never answered."""

    call_id: str
    status: int
    reason: str
    timed_out: bool = False
    auth_failed: bool = False


@dataclass(frozen=True)
class Ended:
    """The callee hung up (their BYE)."""

    call_id: str
    reason: str


@dataclass(frozen=True)
class ReInvite:
    """The callee sent a new offer (hold, a new media address): ``answer_reinvite`` it."""

    call_id: str
    offer: bytes


@dataclass(frozen=True)
class KeyInfo:
    """A key the callee pressed, sent as SIP INFO (RFC 4733 keys come with the media)."""

    call_id: str
    digit: str


@dataclass(frozen=True)
class Registered:
    name: str
    expires: int


@dataclass(frozen=True)
class RegistrationFailed:
    name: str
    status: int
    reason: str
    auth_failed: bool = False


Event = Ringing | Answered | Failed | Ended | ReInvite | KeyInfo | Registered | RegistrationFailed


class OutState(enum.Enum):
    CALLING = "calling"
    RINGING = "ringing"
    CANCELLING = "cancelling"
    CONFIRMED = "confirmed"
    ENDED = "ended"


_OUT_TRANSITIONS: dict[OutState, frozenset[OutState]] = {
    OutState.CALLING: frozenset(
        {OutState.RINGING, OutState.CONFIRMED, OutState.CANCELLING, OutState.ENDED}
    ),
    OutState.RINGING: frozenset({OutState.CONFIRMED, OutState.CANCELLING, OutState.ENDED}),
    # A 2xx that crossed our CANCEL: ACKed, then BYE.
    OutState.CANCELLING: frozenset({OutState.CONFIRMED, OutState.ENDED}),
    OutState.CONFIRMED: frozenset({OutState.ENDED}),
    OutState.ENDED: frozenset(),
}


class RegState(enum.Enum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


_REG_TRANSITIONS: dict[RegState, frozenset[RegState]] = {
    RegState.REGISTERING: frozenset({RegState.REGISTERED, RegState.FAILED}),
    RegState.REGISTERED: frozenset({RegState.REGISTERING}),
    RegState.FAILED: frozenset({RegState.REGISTERING}),
}


class StateError(Exception):
    """A move the table does not list (a bug)."""


@dataclass
class _OutCall:
    call_id: str
    route: Route
    request_uri: str
    from_uri: str
    to_uri: str
    offer: bytes
    ring_deadline: float | None
    local_tag: str = field(default_factory=new_tag)
    cseq: int = field(default_factory=lambda: secrets.randbelow(10_000) + 1)
    state: OutState = OutState.CALLING
    txn: ClientInviteTransaction | None = None
    invite: SipRequest | None = None
    challenged: int = 0
    cancel_pending: str | None = None  # the reason of a CANCEL waiting for a provisional
    cancelled: str | None = None
    remote_tag: str | None = None
    remote_target: str | None = None
    route_set: list[str] = field(default_factory=list)
    ack: bytes | None = None
    settled: bool = False  # Answered or Failed told
    reinvite: tuple[SipRequest, Address] | None = None  # a re-INVITE to answer
    # Our 2xx to a re-INVITE, repeated until its ACK (13.3.1.4): data, to, interval,
    # next, give up.
    pending_2xx: tuple[bytes, Address, float, float, float] | None = None

    def move(self, target: OutState) -> None:
        if target not in _OUT_TRANSITIONS[self.state]:
            raise StateError(f"call {self.call_id}: {self.state.value} -> {target.value}")
        self.state = target


@dataclass
class _Registration:
    name: str
    route: Route
    expires: int
    call_id: str = field(default_factory=lambda: f"{secrets.token_hex(8)}@callbridge")
    local_tag: str = field(default_factory=new_tag)
    cseq: int = 0
    state: RegState = RegState.REGISTERING
    next_at: float | None = None  # the next refresh or retry
    granted: int = 0
    challenged: int = 0
    branch: str | None = None
    failures: int = 0

    def move(self, target: RegState) -> None:
        if target not in _REG_TRANSITIONS[self.state]:
            raise StateError(f"registration {self.name}: {self.state.value} -> {target.value}")
        self.state = target


@dataclass
class ClientStats:
    placed: int = 0
    answered: int = 0
    failed: int = 0
    timed_out: int = 0
    auth_failed: int = 0
    registrations_failed: int = 0
    dropped: int = 0  # datagrams from strangers, unreadable, or for nothing we know


class SipClient:
    """The sans-IO UAC of one socket: calls placed, registrations kept."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.stats = ClientStats()
        self._out: deque[tuple[bytes, Address]] = deque()
        self._events: deque[Event] = deque()
        self._calls: dict[str, _OutCall] = {}
        self._invites: dict[str, _OutCall] = {}  # INVITE branch -> call
        self._others: dict[str, ClientNonInviteTransaction] = {}  # BYE, CANCEL, REGISTER
        self._registrations: dict[str, _Registration] = {}
        self._reg_of: dict[str, _Registration] = {}  # REGISTER branch -> registration

    # -- the glue's side -------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out = list(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        deadlines = [c.txn.deadline() for c in self._invites.values() if c.txn is not None]
        deadlines += [t.deadline() for t in self._others.values()]
        deadlines += [c.ring_deadline for c in self._calls.values() if c.state is OutState.RINGING]
        deadlines += [r.next_at for r in self._registrations.values()]
        deadlines += [c.pending_2xx[3] for c in self._calls.values() if c.pending_2xx]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        for call in self._calls.values():
            if call.pending_2xx is not None and call.pending_2xx[3] <= now:
                data, to, interval, _, give_up = call.pending_2xx
                if now >= give_up:
                    call.pending_2xx = None
                    continue
                self._out.append((data, to))
                interval = min(interval * 2, 4.0)
                call.pending_2xx = (data, to, interval, now + interval, give_up)
        for branch, call in list(self._invites.items()):
            txn = call.txn
            deadline = txn.deadline() if txn is not None else None
            if txn is None or deadline is None or deadline > now:
                continue
            for data in txn.on_timer(now):
                self._out.append((data, txn.address))
            if txn.terminated:
                del self._invites[branch]
                if txn.timed_out and not call.settled:
                    self._fail(call, 408, "no answer from the trunk", now, timed_out=True)
        for branch, other in list(self._others.items()):
            deadline = other.deadline()
            if deadline is None or deadline > now:
                continue
            for data in other.on_timer(now):
                self._out.append((data, other.address))
            if other.terminated:
                del self._others[branch]
                reg = self._reg_of.pop(branch, None)
                if reg is not None and other.timed_out and other.final_status is None:
                    self._reg_failed(reg, 408, "no answer from the registrar", now)
        for call in list(self._calls.values()):
            deadline = call.ring_deadline
            if call.state is OutState.RINGING and deadline is not None and now >= deadline:
                self.cancel(call.call_id, now, "no answer")
        for reg in self._registrations.values():
            if reg.next_at is not None and now >= reg.next_at:
                reg.next_at = None
                reg.move(RegState.REGISTERING)
                reg.challenged = 0
                self._send_register(reg, now)

    def receive_datagram(
        self, data: bytes, addr: Address, now: float, stream: bool = False
    ) -> None:
        if self.config.allowed and addr[0] not in self.config.allowed:
            self.stats.dropped += 1
            return
        if not data.strip(b"\r\n\x00 "):
            return  # keep-alive
        try:
            message = parse_message(data, stream=stream)
            if isinstance(message, SipResponse):
                self._receive_response(message, now)
            else:
                self._receive_request(message, addr, now)
        except (SipError, digest.DigestError) as error:
            log.debug("SIP client: dropped a message from %s: %s", addr, error)
            self.stats.dropped += 1

    # -- the application's side ----------------------------------------------------------

    def invite(
        self,
        call_id: str,
        route: Route,
        number: str,
        offer: bytes,
        now: float,
        *,
        from_user: str | None = None,
        ring_timeout: float | None = 60.0,
    ) -> None:
        """Call ``number`` through ``route`` with the SDP ``offer``; ``Ringing``, then
        ``Answered`` or ``Failed``. ``ring_timeout``: how long it may ring before CANCEL."""
        if len(self._calls) >= MAX_CALLS:
            raise SipError(503, "too many calls placed at once")
        if call_id in self._calls:
            raise ValueError(f"call {call_id} placed already")
        user = from_user or (route.credentials.username if route.credentials else "callbridge")
        call = _OutCall(
            call_id,
            route,
            request_uri=f"sip:{number}@{route.domain}",
            from_uri=f"sip:{user}@{route.domain}",
            to_uri=f"sip:{number}@{route.domain}",
            offer=offer,
            ring_deadline=ring_timeout,  # made absolute at the first provisional
        )
        self._calls[call_id] = call
        self.stats.placed += 1
        self._send_invite(call, now)

    def cancel(self, call_id: str, now: float, reason: str = "cancelled") -> None:
        """Give up a call not answered yet (CANCEL); an answered one gets BYE."""
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.state is OutState.CONFIRMED:
            self.hangup(call_id, now)
        elif call.state is OutState.CALLING:
            call.cancel_pending = reason  # sent with the first provisional (RFC 3261 9.1)
        elif call.state is OutState.RINGING:
            call.move(OutState.CANCELLING)
            call.cancelled = reason
            self._send_cancel(call, now)

    def hangup(self, call_id: str, now: float) -> None:
        """End a call from our side: BYE once answered, CANCEL before."""
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.state is not OutState.CONFIRMED:
            self.cancel(call_id, now, "hung up")
            return
        call.move(OutState.ENDED)
        self._send_bye(call, now)
        self._forget(call)

    def transport_failed(self, address: Address, reason: str, now: float) -> None:
        """No connection to ``address`` (refused, or TLS that did not verify): every call
        still waiting on its INVITE there fails with 503 (the next trunk takes it), and
        registrations waiting there fail too (retried later), now rather than at a timeout."""
        for branch, call in list(self._invites.items()):
            txn = call.txn
            if txn is None or txn.address != address or call.settled:
                continue
            del self._invites[branch]
            self._fail(call, 503, f"no connection to the trunk ({reason})", now)
        for branch, other in list(self._others.items()):
            if other.address != address:
                continue
            del self._others[branch]
            reg = self._reg_of.pop(branch, None)
            if reg is not None and reg.state is RegState.REGISTERING:
                self._reg_failed(reg, 503, f"no connection to the registrar ({reason})", now)

    def register(self, name: str, route: Route, expires: int, now: float) -> None:
        """Keep ``route``'s account registered; ``Registered``/``RegistrationFailed`` say how."""
        if name in self._registrations:
            raise ValueError(f"registration {name} exists")
        reg = self._registrations[name] = _Registration(name, route, expires)
        self._send_register(reg, now)

    def unregister_all(self, now: float) -> None:
        """REGISTER with Expires 0 for every registration held (best effort, on stop)."""
        for reg in self._registrations.values():
            if reg.state is RegState.REGISTERED:
                reg.expires = 0
                reg.challenged = 0
                reg.move(RegState.REGISTERING)
                self._send_register(reg, now)
            reg.next_at = None

    def registration(self, name: str) -> tuple[RegState, int]:
        """A registration's state and the seconds last granted."""
        reg = self._registrations[name]
        return reg.state, reg.granted

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    # -- building requests -----------------------------------------------------------------

    def _headers(
        self, route: Route, branch: str, from_: str, to: str, call_id: str, cseq: str
    ) -> Headers:
        headers = Headers()
        transport = route.transport.upper()
        # alias (RFC 5923): the trunk sends in-dialog requests back over our connection.
        alias = ";alias" if route.reliable else ""
        headers.add(
            "Via",
            f"SIP/2.0/{transport} {self.config.host}:{self.config.port};branch={branch};rport"
            + alias,
        )
        headers.add("Max-Forwards", "70")
        headers.add("From", from_)
        headers.add("To", to)
        headers.add("Call-ID", call_id)
        headers.add("CSeq", cseq)
        return headers

    def _contact(self, user: str, route: Route) -> str:
        transport = f";transport={route.transport.lower()}" if route.reliable else ""
        return f"<sip:{user}@{self.config.host}:{self.config.port}{transport}>"

    def _register_contact(self, user: str, route: Route) -> str:
        if self.config.register_contact is None:
            return self._contact(user, route)
        host, port = self.config.register_contact
        transport = route.transport.lower() if route.reliable else ""
        if transport == "tls":
            if self.config.register_tls_contact is not None:
                host, port = self.config.register_tls_contact
            else:
                transport = "tcp"  # the endpoint has no TLS port: its TCP one
        param = f";transport={transport}" if transport else ""
        return f"<sip:{user}@{host}:{port}{param}>"

    def _send_invite(self, call: _OutCall, now: float, auth: tuple[str, str] | None = None) -> None:
        branch = new_branch()
        headers = self._headers(
            call.route,
            branch,
            f"<{call.from_uri}>;tag={call.local_tag}",
            f"<{call.to_uri}>",
            call.call_id,
            f"{call.cseq} INVITE",
        )
        headers.add("Contact", self._contact("callbridge", call.route))
        headers.add("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")
        headers.add("User-Agent", self.config.user_agent)
        if auth is not None:
            headers.add(*auth)
        headers.add("Content-Type", "application/sdp")
        request = SipRequest("INVITE", call.request_uri, headers, call.offer)
        call.invite = request
        txn = ClientInviteTransaction(
            branch, call.route.address, call.route.reliable, now, request.serialize(),
            timeout=call.route.timeout,
        )  # fmt: skip
        call.txn = txn
        self._invites[branch] = call
        for data in txn.start():
            self._out.append((data, txn.address))

    def _send_cancel(self, call: _OutCall, now: float) -> None:
        """CANCEL the INVITE in progress: same branch, same CSeq number (9.1)."""
        assert call.invite is not None and call.txn is not None
        invite = call.invite
        headers = Headers()
        for name in ("Via", "Max-Forwards", "From", "To", "Call-ID"):
            value = invite.headers.get(name)
            if value is not None:
                headers.add(name, value)
        headers.add("CSeq", f"{call.cseq} CANCEL")
        headers.add("User-Agent", self.config.user_agent)
        data = SipRequest("CANCEL", call.request_uri, headers).serialize()
        key = f"{call.txn.key}|CANCEL"
        txn = ClientNonInviteTransaction(key, call.route.address, call.route.reliable, now, data)
        self._others[key] = txn
        for out in txn.start():
            self._out.append((out, txn.address))

    def _next_hop(self, call: _OutCall) -> Address:
        """The first route's address when it names an IP (else the trunk's)."""
        if call.route_set:
            uri = NameAddr.parse(call.route_set[0]).uri
            if _is_ip(uri.host):
                default = 5061 if call.route.transport.upper() == "TLS" else 5060
                return (uri.host.strip("[]"), uri.port or default)
        return call.route.address

    def _in_dialog(self, call: _OutCall, method: str, cseq: int) -> tuple[SipRequest, str]:
        branch = new_branch()
        headers = self._headers(
            call.route,
            branch,
            f"<{call.from_uri}>;tag={call.local_tag}",
            f"<{call.to_uri}>;tag={call.remote_tag}",
            call.call_id,
            f"{cseq} {method}",
        )
        for route in call.route_set:
            headers.add("Route", route)
        headers.add("User-Agent", self.config.user_agent)
        return SipRequest(method, call.remote_target or call.request_uri, headers), branch

    def _send_bye(self, call: _OutCall, now: float) -> None:
        call.cseq += 1
        request, branch = self._in_dialog(call, "BYE", call.cseq)
        address = self._next_hop(call)
        txn = ClientNonInviteTransaction(
            branch, address, call.route.reliable, now, request.serialize()
        )
        self._others[branch] = txn
        for out in txn.start():
            self._out.append((out, address))

    def _send_register(
        self, reg: _Registration, now: float, auth: tuple[str, str] | None = None
    ) -> None:
        route = reg.route
        user = route.credentials.username if route.credentials else "callbridge"
        aor = f"sip:{user}@{route.domain}"
        reg.cseq += 1
        branch = new_branch()
        headers = self._headers(
            route, branch, f"<{aor}>;tag={reg.local_tag}", f"<{aor}>", reg.call_id,
            f"{reg.cseq} REGISTER",
        )  # fmt: skip
        headers.add("Contact", self._register_contact(user, route))
        headers.add("Expires", str(reg.expires))
        headers.add("User-Agent", self.config.user_agent)
        if auth is not None:
            headers.add(*auth)
        data = SipRequest("REGISTER", f"sip:{route.domain}", headers).serialize()
        txn = ClientNonInviteTransaction(branch, route.address, route.reliable, now, data)
        if reg.branch is not None:
            self._reg_of.pop(reg.branch, None)
        reg.branch = branch
        self._others[branch] = txn
        self._reg_of[branch] = reg
        for out in txn.start():
            self._out.append((out, route.address))

    def _authorization(
        self, response: SipResponse, credentials: Credentials, method: str, uri: str
    ) -> tuple[str, str]:
        """The header answering the response's challenge (``DigestError`` if none fits)."""
        proxy = response.status == 407
        challenges = response.headers.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate")
        challenge = digest.choose(challenges)
        answer = digest.answer(challenge, credentials.username, credentials.password, method, uri)
        return ("Proxy-Authorization" if proxy else "Authorization", answer.header)

    @staticmethod
    def _may_answer(response: SipResponse, challenged: int) -> bool:
        """The first challenge is answered; a later one only when it says our nonce was stale
        (else the credentials were refused: a wrong password is not tried again and again)."""
        if challenged == 0:
            return True
        name = "Proxy-Authenticate" if response.status == 407 else "WWW-Authenticate"
        for value in response.headers.get_all(name):
            try:
                if digest.parse_challenge(value).stale:
                    return challenged < 3
            except digest.DigestError:
                continue
        return False

    # -- responses -------------------------------------------------------------------------

    def _receive_response(self, response: SipResponse, now: float) -> None:
        vias = response.headers.get_all("Via")
        branch = Via.parse(vias[0]).branch if vias else None
        if branch is None:
            self.stats.dropped += 1
            return
        call = self._invites.get(branch)
        if call is not None and response.cseq[1] == "INVITE":
            self._invite_response(call, response, now)
            return
        other = self._others.get(branch)
        if other is None:
            # A 2xx repeated after its transaction ended (Timer M): ACK it again.
            call = self._calls.get(response.call_id)
            if call is not None and call.ack is not None and 200 <= response.status < 300:
                self._out.append((call.ack, self._next_hop(call)))
                return
            self.stats.dropped += 1
            return
        other.receive_response(response.status, now)
        reg = self._reg_of.get(branch)
        if reg is not None and response.status >= 200:
            self._register_response(reg, response, now)

    def _invite_response(self, call: _OutCall, response: SipResponse, now: float) -> None:
        txn = call.txn
        assert txn is not None
        status = response.status
        if status < 200:
            txn.receive_response(status, now)
            if call.state is OutState.CALLING and status > 100:
                call.move(OutState.RINGING)
                if call.ring_deadline is not None:
                    call.ring_deadline = now + call.ring_deadline
                self._events.append(Ringing(call.call_id, status))
            if call.cancel_pending is not None and call.state is not OutState.CANCELLING:
                call.cancelled, call.cancel_pending = call.cancel_pending, None
                call.move(OutState.CANCELLING)
                self._send_cancel(call, now)
            return
        if status < 300:
            txn.receive_response(status, now)
            if call.ack is not None:
                self._out.append((call.ack, self._next_hop(call)))  # a repeated 2xx
                return
            self._confirm(call, response, now)
            return
        ack = self._non_2xx_ack(call, response)
        for data in txn.receive_response(status, now, ack):
            self._out.append((data, txn.address))
        if call.settled or txn.final_status != status or call.state is OutState.ENDED:
            return
        credentials = call.route.credentials
        if (
            status in (401, 407)
            and credentials is not None
            and self._may_answer(response, call.challenged)
        ):
            call.challenged += 1
            call.cseq += 1
            auth = self._authorization(response, credentials, "INVITE", call.request_uri)
            del self._invites[txn.key]
            self._send_invite(call, now, auth)
            return
        if call.cancelled is not None:
            self._fail(call, status, call.cancelled, now)
            return
        reason = response.reason
        if status in (401, 407):
            reason = "authentication failed (wrong username or password?)"
        self._fail(call, status, reason, now, auth_failed=status in (401, 407))

    def _non_2xx_ack(self, call: _OutCall, response: SipResponse) -> bytes:
        """17.1.1.3: the ACK of a 3xx-6xx, on the INVITE's branch, with the response's To."""
        assert call.invite is not None
        invite = call.invite
        headers = Headers()
        for name in ("Via", "Max-Forwards", "From"):
            value = invite.headers.get(name)
            if value is not None:
                headers.add(name, value)
        headers.add("To", response.headers.get("To") or f"<{call.to_uri}>")
        headers.add("Call-ID", call.call_id)
        headers.add("CSeq", f"{call.cseq} ACK")
        return SipRequest("ACK", call.request_uri, headers).serialize()

    def _confirm(self, call: _OutCall, response: SipResponse, now: float) -> None:
        """The first 2xx: the dialog (12.1.2), its ACK, and the news."""
        to = NameAddr.parse(response.headers.get("To") or "")
        contact = response.headers.get("Contact")
        call.remote_tag = to.tag
        call.remote_target = str(NameAddr.parse(contact).uri) if contact else call.request_uri
        call.route_set = list(reversed(response.headers.get_all("Record-Route")))
        request, _ = self._in_dialog(call, "ACK", call.cseq)
        request.headers.remove("User-Agent")
        call.ack = request.serialize()
        self._out.append((call.ack, self._next_hop(call)))
        if call.state is OutState.CANCELLING:
            # Our CANCEL lost the race: the call is up, and is ended at once.
            call.move(OutState.CONFIRMED)
            reason = call.cancelled or "cancelled"
            self.hangup(call.call_id, now)
            self._fail(call, 487, reason, now)
            return
        call.move(OutState.CONFIRMED)
        call.settled = True
        self.stats.answered += 1
        self._events.append(Answered(call.call_id, response.body))

    def _fail(
        self,
        call: _OutCall,
        status: int,
        reason: str,
        now: float,
        *,
        timed_out: bool = False,
        auth_failed: bool = False,
    ) -> None:
        if call.settled:
            return
        call.settled = True
        self.stats.failed += 1
        self.stats.timed_out += timed_out
        self.stats.auth_failed += auth_failed
        if call.state is not OutState.ENDED:
            call.move(OutState.ENDED)
        self._forget(call)
        self._events.append(Failed(call.call_id, status, reason, timed_out, auth_failed))

    def _forget(self, call: _OutCall) -> None:
        self._calls.pop(call.call_id, None)

    def _register_response(self, reg: _Registration, response: SipResponse, now: float) -> None:
        status = response.status
        credentials = reg.route.credentials
        if (
            status in (401, 407)
            and credentials is not None
            and self._may_answer(response, reg.challenged)
        ):
            reg.challenged += 1
            auth = self._authorization(response, credentials, "REGISTER", f"sip:{reg.route.domain}")
            self._send_register(reg, now, auth)
            return
        if status == 423:
            minimum = response.headers.get("Min-Expires") or ""
            if minimum.isdigit() and int(minimum) > reg.expires:
                reg.expires = int(minimum)
                reg.challenged = 0
                self._send_register(reg, now)
                return
        if 200 <= status < 300:
            reg.challenged = 0
            if reg.expires == 0:
                reg.granted = 0
                reg.move(RegState.REGISTERED)
                return
            reg.granted = self._granted(reg, response)
            reg.failures = 0
            reg.move(RegState.REGISTERED)
            reg.next_at = now + max(reg.granted / 2, MIN_REFRESH)
            self._events.append(Registered(reg.name, reg.granted))
            return
        reason = response.reason
        if status in (401, 407, 403):
            reason = "authentication failed (wrong username or password?)"
        self._reg_failed(reg, status, reason, now, auth_failed=status in (401, 403, 407))

    def _granted(self, reg: _Registration, response: SipResponse) -> int:
        """The seconds the registrar granted: our Contact's expires, else Expires (10.3)."""
        mine = NameAddr.parse(self._register_contact("x", reg.route)).uri
        ours = f"{mine.host}:{mine.port}"
        for contact in response.headers.get_all("Contact"):
            try:
                parsed = NameAddr.parse(contact)
            except SipError:
                continue
            value = parsed.params.get("expires")
            if ours in str(parsed.uri) and value is not None and value.isdigit():
                return int(value)
        header = response.headers.get("Expires") or ""
        return int(header) if header.isdigit() else reg.expires

    def _reg_failed(
        self, reg: _Registration, status: int, reason: str, now: float, auth_failed: bool = False
    ) -> None:
        reg.challenged = 0
        reg.failures += 1
        reg.move(RegState.FAILED)
        self.stats.registrations_failed += 1
        if reg.expires:
            reg.next_at = now + RETRY_AFTER
        self._events.append(RegistrationFailed(reg.name, status, reason, auth_failed))

    # -- requests from the callee's side -------------------------------------------------

    def answer_reinvite(self, call_id: str, sdp: bytes, now: float) -> None:
        """Answer the callee's re-INVITE with our SDP (200, repeated until ACKed over UDP)."""
        call = self._calls.get(call_id)
        if call is None or call.reinvite is None:
            return
        request, addr = call.reinvite
        call.reinvite = None
        response = make_response(
            request,
            200,
            headers=[("Contact", self._contact("callbridge", call.route)),
                     ("Server", self.config.user_agent)],
            body=sdp,
        )  # fmt: skip
        data = response.serialize()
        self._out.append((data, addr))
        if not call.route.reliable:
            call.pending_2xx = (data, addr, T1, now + T1, now + 64 * T1)

    def reject_reinvite(self, call_id: str, status: int) -> None:
        """Refuse the callee's new offer (488); the call goes on as it was."""
        call = self._calls.get(call_id)
        if call is not None and call.reinvite is not None:
            request, addr = call.reinvite
            call.reinvite = None
            self._reply(request, addr, status)

    def _receive_request(self, request: SipRequest, addr: Address, now: float) -> None:
        call = self._calls.get(request.call_id)
        if request.method == "ACK":
            if call is not None:
                call.pending_2xx = None  # the ACK of our 2xx to a re-INVITE
            return
        from_tag = NameAddr.parse(request.headers.get("From") or "").tag
        to_tag = NameAddr.parse(request.headers.get("To") or "").tag
        ours = call is not None and to_tag == call.local_tag and from_tag == call.remote_tag
        if request.method == "OPTIONS":
            self._reply(request, addr, 200)
        elif not ours or call is None:
            self._reply(request, addr, 481)
        elif request.method == "BYE":
            self._reply(request, addr, 200)
            call.move(OutState.ENDED)
            self._forget(call)
            self._events.append(Ended(call.call_id, "bye"))
        elif request.method == "INFO":
            self._reply(request, addr, 200)
            key = dtmf_info(request)
            if key is not None:
                self._events.append(KeyInfo(call.call_id, key[0]))
        elif request.method == "INVITE":
            if call.reinvite is not None or call.state is not OutState.CONFIRMED:
                self._reply(request, addr, 491)  # another offer is in progress
                return
            call.reinvite = (request, addr)
            self._events.append(ReInvite(call.call_id, request.body))
        else:
            self._reply(request, addr, 405)

    def _reply(self, request: SipRequest, addr: Address, status: int) -> None:
        response = make_response(request, status, headers=[("Server", self.config.user_agent)])
        self._out.append((response.serialize(), addr))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
