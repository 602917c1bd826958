"""The SIP user-agent core a server wraps: datagrams in, datagrams and events out.

Like aioquic's connection, ``SipEndpoint`` does no I/O and reads no clock.
The glue calls ``receive_datagram(data, addr, now)``, sends what
``datagrams_to_send()`` returns, delivers ``next_event()`` to the
application, and calls ``handle_timer(now)`` at ``get_timer()``. The
application answers calls with ``ring``/``answer``/``reject`` and ends them
with ``hangup``.

Automatic behaviour: 100 Trying at once; OPTIONS answered 200; CANCEL
answered 200 with a 487 for the INVITE; BYE answered 200; SIP INFO DTMF
answered 200 and reported; unknown dialogs 481; unknown methods 501,
known-but-unsupported ones 405. Datagrams from outside the allowed trunk
networks are refused before they are parsed (``sip.trunk.TrunkGate``): no
transaction, at most one stateless 403 per source per second, never
repeated (OPTIONS included: the server does not reveal itself to
strangers). Every SipError is caught here and answered; any other exception
in handling one message is logged (rate-limited) and the request answered
500, or the datagram dropped. A datagram that cannot be answered is dropped
and counted. Nothing escapes.

(Over the ~500 lines of the style guide: the user-agent core is one state
machine over calls and transactions; splitting it would split the state.)
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import re
from collections import deque
from dataclasses import dataclass, field

from callbridge.sip.advertise import Advertised, hostport
from callbridge.sip.dialog import Dialog, DialogState, new_tag
from callbridge.sip.errors import SipError
from callbridge.sip.message import (
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    make_response,
    parse_message,
)
from callbridge.sip.transaction import (
    T1,
    T2,
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TxState,
)
from callbridge.sip.trunk import TrunkGate, echo_response
from callbridge.throttle import Throttle

log = logging.getLogger(__name__)

Address = tuple[str, int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"
UNSUPPORTED_METHODS = frozenset(
    {"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER", "UPDATE", "PRACK"}
)
_DTMF_RELAY = re.compile(r"(?im)^\s*signal\s*=\s*([0-9*#A-Da-d])\s*$")
_DTMF_DURATION = re.compile(r"(?im)^\s*duration\s*=\s*(\d+)\s*$")


def dtmf_info(request: SipRequest) -> tuple[str, int] | None:
    """The key (and its duration, ms) a SIP INFO carries, or None (the UAC reads it too)."""
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    body = request.body.decode("utf-8", errors="replace")
    digit: str | None = None
    duration = 160
    if content_type == "application/dtmf-relay":
        signal = _DTMF_RELAY.search(body)
        if signal:
            digit = signal.group(1).upper()
        length = _DTMF_DURATION.search(body)
        if length:
            duration = int(length.group(1))
    elif content_type == "application/dtmf":
        candidate = body.strip()
        if len(candidate) == 1 and candidate in "0123456789*#ABCDabcd":
            digit = candidate.upper()
    return (digit, min(duration, 10_000)) if digit is not None else None


@dataclass
class EndpointConfig:
    host: str = "127.0.0.1"
    port: int = 5060
    transport: str = "UDP"
    allowed_networks: tuple[Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    user_agent: str = "callbridge"
    max_calls: int = 5000
    # What peers outside the local networks are told our address is (behind
    # a NAT); None: the bind address, to everyone.
    advertised: Advertised | None = None

    def sent_by(self, peer: str) -> tuple[str, int]:
        """Our host and port as the peer at ``peer`` must see them (Contact, Via)."""
        if self.advertised is None:
            return self.host, self.port
        return self.advertised.sip_for(peer, self.port)


# -- events -------------------------------------------------------------------


@dataclass(frozen=True)
class IncomingCall:
    """An INVITE the application must ring, answer or reject."""

    call_id: str
    dialled: str  # the Request-URI's user part (a number, for a trunk)
    caller: str  # From's user part or display name, for the console
    from_uri: str
    offer: bytes  # the SDP offer
    source: Address
    # The INVITE itself: the guard reads the caller's asserted identity from it.
    request: SipRequest | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CallConfirmed:
    call_id: str


@dataclass(frozen=True)
class CallCancelled:
    call_id: str


@dataclass(frozen=True)
class CallEnded:
    call_id: str
    reason: str  # "bye", "hangup", "no ack", "cancel", "timeout"


@dataclass(frozen=True)
class ReInvite:
    """A re-INVITE (hold, unhold, new media address); answer with ``answer_reinvite``."""

    call_id: str
    offer: bytes


@dataclass(frozen=True)
class DtmfInfo:
    call_id: str
    digit: str
    duration_ms: int


Event = IncomingCall | CallConfirmed | CallCancelled | CallEnded | ReInvite | DtmfInfo


class CallState(enum.Enum):
    OFFERED = "offered"
    ANSWERED = "answered"  # 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


_CALL_TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.OFFERED: frozenset({CallState.ANSWERED, CallState.TERMINATED}),
    CallState.ANSWERED: frozenset({CallState.CONFIRMED, CallState.TERMINATED}),
    CallState.CONFIRMED: frozenset({CallState.TERMINATED}),
    CallState.TERMINATED: frozenset(),
}


@dataclass
class _Pending2xx:
    """A 2xx we repeat until its ACK arrives (13.3.1.4)."""

    data: bytes
    address: Address
    interval: float
    next_at: float
    give_up_at: float


@dataclass
class _Call:
    call_id: str
    invite: SipRequest
    transaction: ServerInviteTransaction
    dialog: Dialog
    source: Address
    state: CallState = CallState.OFFERED
    pending_2xx: _Pending2xx | None = None
    reinvite: tuple[SipRequest, ServerInviteTransaction] | None = None

    def move(self, target: CallState) -> None:
        if target not in _CALL_TRANSITIONS[self.state]:
            raise SipError(500, f"call cannot go from {self.state.value} to {target.value}")
        self.state = target


@dataclass
class EndpointStats:
    received: int = 0
    dropped: int = 0
    rejected: dict[int, int] = field(default_factory=dict)
    # Every response sent, by status, 1xx included (retransmissions are not counted).
    responses: dict[int, int] = field(default_factory=dict)


class SipEndpoint:
    """The sans-IO SIP core of one listening socket."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.reliable = config.transport.upper() in ("TCP", "TLS")
        self.stats = EndpointStats()
        self._out: deque[tuple[bytes, Address]] = deque()
        self._events: deque[Event] = deque()
        self._calls: dict[str, _Call] = {}
        self._server_txns: dict[str, ServerInviteTransaction | ServerNonInviteTransaction] = {}
        self._client_txns: dict[str, ClientNonInviteTransaction] = {}
        # Strangers are refused from their address alone, before parsing.
        self.gate = TrunkGate(config.allowed_networks)
        self._failures = Throttle(60.0, max_keys=1)  # one traceback a minute

    # -- the glue's side ---------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Take one datagram (or one framed TCP message) from ``addr``."""
        self.stats.received += 1
        if not self.gate.allowed(addr[0]):
            self.refuse(data, addr, now)
            return
        if not data.strip(b"\r\n\x00 "):
            return  # keep-alive
        try:
            message = parse_message(data, stream=self.reliable)
        except SipError as error:
            self._answer_malformed(data, addr, error)
            return
        except Exception:
            # A parser bug: the message is malformed as far as anyone can tell.
            self._failed("parsing a message", addr, now)
            self._answer_malformed(data, addr, SipError(400, "Bad Request"))
            return
        try:
            if isinstance(message, SipResponse):
                self._receive_response(message, now)
            else:
                self._receive_request(message, addr, now)
        except SipError as error:
            if isinstance(message, SipRequest) and message.method != "ACK":
                self._reply(message, addr, error.status, error.reason, now)
            else:
                self.stats.dropped += 1
        except Exception:
            self._failed(f"handling a {getattr(message, 'method', 'response')}", addr, now)
            self._answer_failed(message, addr, now)

    def refuse(self, data: bytes, addr: Address, now: float) -> None:
        """A datagram from outside the trunk networks: counted, answered once at most, no state."""
        refusal = self.gate.refuse(addr[0], now)
        if refusal.log:
            more = self.gate.suppressed_logs()
            log.warning(
                "SIP from %s refused: not an allowed trunk address%s",
                addr[0],
                f" ({more} more refusals not logged)" if more else "",
            )
        if refusal.answer and not self.reliable:
            answer = echo_response(data, 403, "Forbidden (not an allowed trunk)")
            if answer is not None:
                self.stats.rejected[403] = self.stats.rejected.get(403, 0) + 1
                self._counted(403)
                self._out.append((answer, addr))
                return
        self.stats.dropped += 1

    def _failed(self, doing: str, addr: Address, now: float) -> None:
        """Log an unexpected exception, with its traceback at most once a minute."""
        if self._failures.allow("failure", now):
            more = self._failures.take_suppressed()
            log.exception(
                "SIP: %s from %s failed%s",
                doing,
                addr,
                f" ({more} more failures since the last one logged)" if more else "",
            )

    def _answer_failed(self, message: SipRequest | SipResponse, addr: Address, now: float) -> None:
        """500 for a request whose handling failed; a half-made call is let go."""
        if not isinstance(message, SipRequest) or message.method == "ACK":
            self.stats.dropped += 1
            return
        try:
            call = self._calls.get(message.call_id)
            if message.method == "INVITE" and call is not None and call.invite is message:
                self.reject(call.call_id, 500, now, "Server Internal Error")
                return
            self._reply(message, addr, 500, "Server Internal Error", now)
        except Exception:
            self.stats.dropped += 1

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out = list(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest moment ``handle_timer`` must run, or None."""
        deadlines = [t.deadline() for t in self._server_txns.values()]
        deadlines += [t.deadline() for t in self._client_txns.values()]
        deadlines += [c.pending_2xx.next_at for c in self._calls.values() if c.pending_2xx]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        for key, txn in list(self._server_txns.items()):
            deadline = txn.deadline()
            if deadline is not None and deadline <= now:
                for data in txn.on_timer(now):
                    self._out.append((data, txn.address))
            if txn.terminated:
                del self._server_txns[key]
        for key, ctxn in list(self._client_txns.items()):
            deadline = ctxn.deadline()
            if deadline is not None and deadline <= now:
                for data in ctxn.on_timer(now):
                    self._out.append((data, ctxn.address))
            if ctxn.terminated:
                del self._client_txns[key]
        for call in list(self._calls.values()):
            pending = call.pending_2xx
            if pending is None or pending.next_at > now:
                continue
            if now >= pending.give_up_at:
                call.pending_2xx = None
                log.info("call %s: no ACK for the 200 OK; hanging up", call.call_id)
                self._end_locally(call, "no ack", now)
                continue
            self._out.append((pending.data, pending.address))
            pending.interval = min(pending.interval * 2, T2)
            pending.next_at = min(now + pending.interval, pending.give_up_at)

    # -- the application's side ---------------------------------------------------

    @property
    def active_calls(self) -> int:
        return sum(1 for c in self._calls.values() if c.state is not CallState.TERMINATED)

    def ring(self, call_id: str, now: float) -> None:
        """Send 180 Ringing for an offered call."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.OFFERED:
            return
        self._send_on(call.transaction, call, 180, now)

    def answer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Send 200 OK with our SDP answer; it repeats until the caller ACKs."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.OFFERED:
            return
        call.move(CallState.ANSWERED)
        data = self._send_on(call.transaction, call, 200, now, body=sdp)
        call.pending_2xx = _Pending2xx(
            data, self._response_address(call.invite, call.source), T1, now + T1, now + 64 * T1
        )
        if self.reliable:
            call.pending_2xx.next_at = now + 64 * T1  # TCP: no repeats, only the give-up

    def reject(self, call_id: str, status: int, now: float, reason: str | None = None) -> None:
        """Refuse an offered call with a final status (403, 486, 488, 503...)."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.OFFERED:
            return
        self._send_on(call.transaction, call, status, now, reason=reason)
        call.move(CallState.TERMINATED)
        call.dialog.move(DialogState.TERMINATED)
        del self._calls[call_id]

    def hangup(self, call_id: str, now: float) -> None:
        """End a call from our side: BYE when answered, 480 while still offered."""
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.state is CallState.OFFERED:
            self.reject(call_id, 480, now, "Temporarily Unavailable")
            self._events.append(CallEnded(call_id, "hangup"))
            return
        self._end_locally(call, "hangup", now)

    def answer_reinvite(self, call_id: str, sdp: bytes, now: float) -> None:
        call = self._calls.get(call_id)
        if call is None or call.reinvite is None:
            return
        request, txn = call.reinvite
        call.reinvite = None
        response = make_response(
            request,
            200,
            to_tag=call.dialog.local_tag,
            headers=self._contact(call.source, call.invite),
            body=sdp,
        )
        data = response.serialize()
        self._counted(200)
        for out in txn.send_response(200, data, now):
            self._out.append((out, txn.address))
        call.pending_2xx = _Pending2xx(data, txn.address, T1, now + T1, now + 64 * T1)

    def reject_reinvite(self, call_id: str, status: int, now: float) -> None:
        call = self._calls.get(call_id)
        if call is None or call.reinvite is None:
            return
        request, txn = call.reinvite
        call.reinvite = None
        data = make_response(request, status, to_tag=call.dialog.local_tag).serialize()
        self._counted(status)
        for out in txn.send_response(status, data, now):
            self._out.append((out, txn.address))

    # -- inside ----------------------------------------------------------------------

    def _contact(self, peer: Address, invite: SipRequest) -> list[tuple[str, str]]:
        transport = f";transport={self.config.transport.lower()}" if self.reliable else ""
        scheme = "sip"
        if self.config.transport.upper() == "TLS" and invite.uri[:5].lower() == "sips:":
            # A dialog begun with a SIPS URI keeps to TLS (RFC 3261 section 12.1.1).
            scheme, transport = "sips", ""
        return [
            (
                "Contact",
                f"<{scheme}:callbridge@{hostport(*self.config.sent_by(peer[0]))}{transport}>",
            ),
            ("Allow", ALLOW),
            ("Server", self.config.user_agent),
        ]

    def _send_on(
        self,
        txn: ServerInviteTransaction,
        call: _Call,
        status: int,
        now: float,
        body: bytes = b"",
        reason: str | None = None,
    ) -> bytes:
        response = make_response(
            call.invite,
            status,
            reason,
            to_tag=call.dialog.local_tag,
            headers=(
                self._contact(call.source, call.invite)
                if status < 300
                else [("Server", self.config.user_agent)]
            ),
            body=body,
        )
        data = self._with_received(response, call.source).serialize()
        self._counted(status)
        for out in txn.send_response(status, data, now):
            self._out.append((out, txn.address))
        return data

    def _counted(self, status: int) -> None:
        responses = self.stats.responses
        responses[status] = responses.get(status, 0) + 1

    def has_calls_from(self, addr: Address) -> bool:
        """Is a call in progress whose INVITE came from ``addr`` (a TCP connection's peer)?"""
        return any(call.source == addr for call in self._calls.values())

    def _response_address(self, request: SipRequest, source: Address) -> Address:
        """RFC 3261 18.2.2 with RFC 3581: the source IP; its port if rport was asked."""
        via = request.top_via
        if "rport" in via.params or self.reliable:
            return source
        return (source[0], via.port or 5060)

    def _with_received(self, response: SipResponse, source: Address) -> SipResponse:
        """Stamp received= and rport= on the top Via, so the caller's NAT is remembered."""
        vias = response.headers.get_all("Via")
        if not vias:
            return response
        top = Via.parse(vias[0])
        top.params["received"] = source[0]
        if "rport" in top.params:
            top.params["rport"] = str(source[1])
        params = "".join(f";{k}={v}" if v is not None else f";{k}" for k, v in top.params.items())
        port = f":{top.port}" if top.port else ""
        new_top = f"SIP/2.0/{top.transport} {top.host}{port}{params}"
        rebuilt = Headers()
        first = True
        for name, value in response.headers:
            if name == "Via":
                if first:
                    rebuilt.add("Via", ", ".join([new_top, *vias[1:]]))
                    first = False
                continue
            rebuilt.add(name, value)
        response.headers = rebuilt
        return response

    def _reply(
        self,
        request: SipRequest,
        addr: Address,
        status: int,
        reason: str | None,
        now: float,
        headers: list[tuple[str, str]] | None = None,
        to_tag: str | None = None,
    ) -> None:
        """Answer a request outside any call, through a server transaction."""
        if status >= 300:
            self.stats.rejected[status] = self.stats.rejected.get(status, 0) + 1
        response = make_response(
            request, status, reason, to_tag=to_tag or new_tag(), headers=headers or []
        )
        data = self._with_received(response, addr).serialize()
        address = self._safe_response_address(request, addr)
        key = self._txn_key(request)
        txn = self._server_txns.get(key) if key else None
        if txn is None:
            txn_class = (
                ServerInviteTransaction
                if request.method == "INVITE"
                else ServerNonInviteTransaction
            )
            txn = txn_class(key or "", address, self.reliable, now)
            if key:
                self._server_txns[key] = txn
        self._counted(status)
        for out in txn.send_response(status, data, now):
            self._out.append((out, address))

    def _safe_response_address(self, request: SipRequest, addr: Address) -> Address:
        try:
            return self._response_address(request, addr)
        except SipError:
            return addr

    @staticmethod
    def _txn_key(request: SipRequest) -> str | None:
        try:
            via = request.top_via
        except SipError:
            return None
        branch = via.branch or ""
        method = "INVITE" if request.method == "ACK" else request.method
        if not branch.startswith("z9hG4bK"):
            # RFC 2543 peers: fall back to Call-ID, CSeq number and From tag.
            cseq = request.cseq[0]
            from_tag = NameAddr.parse(request.headers.get("From") or "").tag
            branch = f"2543:{request.call_id}:{cseq}:{from_tag}"
        return f"{branch}|{via.sent_by}|{method}"

    def _answer_malformed(self, data: bytes, addr: Address, error: SipError) -> None:
        """400 (or the error's status) when enough survives to address a response."""
        response = echo_response(data, error.status, error.reason)
        if response is None:
            self.stats.dropped += 1
            return
        self.stats.rejected[error.status] = self.stats.rejected.get(error.status, 0) + 1
        self._counted(error.status)
        self._out.append((response, addr))

    # -- requests ---------------------------------------------------------------------

    def _receive_request(self, request: SipRequest, addr: Address, now: float) -> None:
        method = request.method
        if method == "ACK":
            self._receive_ack(request, now)
            return
        key = self._txn_key(request)
        existing = self._server_txns.get(key) if key else None
        if existing is not None:
            # A retransmission: the transaction repeats its last response.
            for out in existing.receive_request(now):
                self._out.append((out, existing.address))
            return
        if method == "INVITE":
            self._receive_invite(request, addr, now)
        elif method == "CANCEL":
            self._receive_cancel(request, addr, now)
        elif method == "BYE":
            call = self._in_dialog(request)
            self._reply(request, addr, 200, None, now, to_tag=call.dialog.local_tag)
            call.move(CallState.TERMINATED)
            call.dialog.move(DialogState.TERMINATED)
            del self._calls[call.call_id]
            self._events.append(CallEnded(call.call_id, "bye"))
        elif method == "OPTIONS":
            self._reply(
                request,
                addr,
                200,
                None,
                now,
                headers=[
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp, application/dtmf-relay"),
                    ("Supported", ""),
                    ("Server", self.config.user_agent),
                ],
            )
        elif method == "INFO":
            call = self._in_dialog(request)
            self._reply(request, addr, 200, None, now, to_tag=call.dialog.local_tag)
            self._dtmf_info(call, request)
        elif method in UNSUPPORTED_METHODS:
            self._reply(request, addr, 405, None, now, headers=[("Allow", ALLOW)])
        else:
            self._reply(request, addr, 501, None, now, headers=[("Allow", ALLOW)])

    def _in_dialog(self, request: SipRequest) -> _Call:
        call = self._calls.get(request.call_id)
        to_tag = NameAddr.parse(request.headers.get("To") or "").tag
        from_tag = NameAddr.parse(request.headers.get("From") or "").tag
        if (
            call is None
            or call.state is CallState.TERMINATED
            or to_tag != call.dialog.local_tag
            or from_tag != call.dialog.remote_tag
        ):
            raise SipError(481, "no such dialog")
        call.dialog.check_request(request)
        return call

    def _receive_invite(self, request: SipRequest, addr: Address, now: float) -> None:
        to_tag = NameAddr.parse(request.headers.get("To") or "").tag
        if to_tag is not None:
            self._receive_reinvite(request, addr, now)
            return
        if request.call_id in self._calls:
            raise SipError(482, "a second INVITE for a call in progress")
        if self.active_calls >= self.config.max_calls:
            self._reply(
                request,
                addr,
                503,
                "Service Unavailable (at capacity)",
                now,
                headers=[("Retry-After", "30")],
            )
            return
        request_uri = SipUri.parse(request.uri)
        from_addr = NameAddr.parse(request.headers.get("From") or "")
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not request.body or content_type != "application/sdp":
            # Offerless INVITEs (late offer) are not served: trunks here always offer.
            raise SipError(488, "an INVITE without an SDP offer")
        address = self._response_address(request, addr)
        txn = ServerInviteTransaction(self._txn_key(request) or "", address, self.reliable, now)
        self._server_txns[txn.key] = txn
        dialog = Dialog(request, addr)
        call = _Call(request.call_id, request, txn, dialog, addr)
        self._calls[call.call_id] = call
        trying = make_response(request, 100, headers=[("Server", self.config.user_agent)])
        self._counted(100)
        for out in txn.send_response(100, self._with_received(trying, addr).serialize(), now):
            self._out.append((out, address))
        self._events.append(
            IncomingCall(
                call_id=call.call_id,
                dialled=request_uri.user or "",
                caller=from_addr.display or from_addr.uri.user or str(from_addr.uri),
                from_uri=str(from_addr.uri),
                offer=request.body,
                source=addr,
                request=request,
            )
        )

    def _receive_reinvite(self, request: SipRequest, addr: Address, now: float) -> None:
        call = self._in_dialog(request)
        if call.reinvite is not None or call.state is not CallState.CONFIRMED:
            raise SipError(491, "another offer is in progress")
        address = self._response_address(request, addr)
        txn = ServerInviteTransaction(self._txn_key(request) or "", address, self.reliable, now)
        self._server_txns[txn.key] = txn
        call.reinvite = (request, txn)
        trying = make_response(request, 100)
        self._counted(100)
        for out in txn.send_response(100, trying.serialize(), now):
            self._out.append((out, address))
        self._events.append(ReInvite(call.call_id, request.body))

    def _receive_ack(self, request: SipRequest, now: float) -> None:
        key = self._txn_key(request)
        txn = self._server_txns.get(key) if key else None
        if isinstance(txn, ServerInviteTransaction) and txn.state in (
            TxState.COMPLETED,
            TxState.CONFIRMED,
        ):
            txn.receive_ack(now)  # the ACK of our error response: absorbed
            return
        call = self._calls.get(request.call_id)
        if call is None or call.pending_2xx is None:
            return  # a stray or repeated ACK needs no answer
        call.pending_2xx = None
        if call.state is CallState.ANSWERED:
            call.move(CallState.CONFIRMED)
            call.dialog.move(DialogState.CONFIRMED)
            self._events.append(CallConfirmed(call.call_id))

    def _receive_cancel(self, request: SipRequest, addr: Address, now: float) -> None:
        key = self._txn_key(request)
        invite_key = key.replace("|CANCEL", "|INVITE") if key else None
        invite_txn = self._server_txns.get(invite_key) if invite_key else None
        call = self._calls.get(request.call_id)
        if invite_txn is None or call is None:
            raise SipError(481, "no INVITE to cancel")
        self._reply(request, addr, 200, None, now, to_tag=call.dialog.local_tag)
        if call.state is CallState.OFFERED:
            self._send_on(call.transaction, call, 487, now)
            call.move(CallState.TERMINATED)
            call.dialog.move(DialogState.TERMINATED)
            del self._calls[call.call_id]
            self._events.append(CallCancelled(call.call_id))

    def _dtmf_info(self, call: _Call, request: SipRequest) -> None:
        key = dtmf_info(request)
        if key is not None:
            self._events.append(DtmfInfo(call.call_id, *key))

    # -- responses to our requests ---------------------------------------------------------

    def _receive_response(self, response: SipResponse, now: float) -> None:
        vias = response.headers.get_all("Via")
        branch = Via.parse(vias[0]).branch if vias else None
        for key, txn in self._client_txns.items():
            if key == branch:
                txn.receive_response(response.status, now)
                return
        self.stats.dropped += 1

    def _end_locally(self, call: _Call, reason: str, now: float) -> None:
        call.pending_2xx = None
        if call.state in (CallState.ANSWERED, CallState.CONFIRMED):
            bye = call.dialog.make_request(
                "BYE",
                *self.config.sent_by(call.source[0]),
                self.config.transport.upper(),
                self.config.user_agent,
            )
            branch = bye.top_via.branch or ""
            address = call.dialog.next_hop() if not self.reliable else call.source
            txn = ClientNonInviteTransaction(branch, address, self.reliable, now, bye.serialize())
            self._client_txns[branch] = txn
            for out in txn.start():
                self._out.append((out, address))
        if call.state is not CallState.TERMINATED:
            call.move(CallState.TERMINATED)
        if call.dialog.state is not DialogState.TERMINATED:
            call.dialog.move(DialogState.TERMINATED)
        self._calls.pop(call.call_id, None)
        self._events.append(CallEnded(call.call_id, reason))
