"""SIP transactions (RFC 3261 section 17, with RFC 6026's Accepted state).

Each transaction is a small state machine with a transition table. It does
no I/O: methods return the datagrams to send, and ``deadline()`` says when
``on_timer(now)`` wants to be called. Timers that only cover loss (G, E, I,
J, K) are zero on reliable transports.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

T1 = 0.5
T2 = 4.0
T4 = 5.0

Address = tuple[str, int]


class TransactionError(Exception):
    """A transition the transaction's table does not list."""


class TxState(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class TxEvent(enum.Enum):
    REQUEST = "request"  # a retransmission of the request
    SEND_PROVISIONAL = "send_provisional"
    SEND_2XX = "send_2xx"
    SEND_FINAL = "send_final"  # 3xx-6xx for INVITE, any final for non-INVITE
    ACK = "ack"
    RESPONSE_PROVISIONAL = "response_provisional"
    RESPONSE_FINAL = "response_final"
    RESPONSE_2XX = "response_2xx"  # a client INVITE's success
    TIMER_RETRANSMIT = "timer_retransmit"  # G or E
    TIMER_TIMEOUT = "timer_timeout"  # H, L, F
    TIMER_LINGER = "timer_linger"  # I, J, K


S, E = TxState, TxEvent

SERVER_INVITE: dict[TxState, dict[TxEvent, TxState]] = {
    S.PROCEEDING: {
        E.REQUEST: S.PROCEEDING,
        E.SEND_PROVISIONAL: S.PROCEEDING,
        E.SEND_2XX: S.ACCEPTED,
        E.SEND_FINAL: S.COMPLETED,
    },
    S.COMPLETED: {
        E.REQUEST: S.COMPLETED,
        E.TIMER_RETRANSMIT: S.COMPLETED,
        E.ACK: S.CONFIRMED,
        E.TIMER_TIMEOUT: S.TERMINATED,
    },
    S.CONFIRMED: {E.ACK: S.CONFIRMED, E.REQUEST: S.CONFIRMED, E.TIMER_LINGER: S.TERMINATED},
    S.ACCEPTED: {
        E.REQUEST: S.ACCEPTED,
        E.ACK: S.ACCEPTED,
        E.SEND_2XX: S.ACCEPTED,
        E.TIMER_TIMEOUT: S.TERMINATED,
    },
    S.TERMINATED: {},
}

SERVER_NON_INVITE: dict[TxState, dict[TxEvent, TxState]] = {
    S.TRYING: {E.REQUEST: S.TRYING, E.SEND_PROVISIONAL: S.PROCEEDING, E.SEND_FINAL: S.COMPLETED},
    S.PROCEEDING: {
        E.REQUEST: S.PROCEEDING,
        E.SEND_PROVISIONAL: S.PROCEEDING,
        E.SEND_FINAL: S.COMPLETED,
    },
    S.COMPLETED: {E.REQUEST: S.COMPLETED, E.TIMER_LINGER: S.TERMINATED},
    S.TERMINATED: {},
}

CLIENT_NON_INVITE: dict[TxState, dict[TxEvent, TxState]] = {
    S.TRYING: {
        E.TIMER_RETRANSMIT: S.TRYING,
        E.RESPONSE_PROVISIONAL: S.PROCEEDING,
        E.RESPONSE_FINAL: S.COMPLETED,
        E.TIMER_TIMEOUT: S.TERMINATED,
    },
    S.PROCEEDING: {
        E.TIMER_RETRANSMIT: S.PROCEEDING,
        E.RESPONSE_PROVISIONAL: S.PROCEEDING,
        E.RESPONSE_FINAL: S.COMPLETED,
        E.TIMER_TIMEOUT: S.TERMINATED,
    },
    S.COMPLETED: {
        E.RESPONSE_PROVISIONAL: S.COMPLETED,
        E.RESPONSE_FINAL: S.COMPLETED,
        E.TIMER_LINGER: S.TERMINATED,
    },
    S.TERMINATED: {},
}


CLIENT_INVITE: dict[TxState, dict[TxEvent, TxState]] = {
    S.CALLING: {
        E.TIMER_RETRANSMIT: S.CALLING,  # Timer A
        E.RESPONSE_PROVISIONAL: S.PROCEEDING,
        E.RESPONSE_2XX: S.ACCEPTED,
        E.RESPONSE_FINAL: S.COMPLETED,
        E.TIMER_TIMEOUT: S.TERMINATED,  # Timer B
    },
    S.PROCEEDING: {
        E.RESPONSE_PROVISIONAL: S.PROCEEDING,
        E.RESPONSE_2XX: S.ACCEPTED,
        E.RESPONSE_FINAL: S.COMPLETED,
    },
    # A repeated final is ACKed again by the transaction (17.1.1.2).
    S.COMPLETED: {
        E.RESPONSE_PROVISIONAL: S.COMPLETED,
        E.RESPONSE_FINAL: S.COMPLETED,
        E.TIMER_LINGER: S.TERMINATED,  # Timer D
    },
    # RFC 6026: 2xx retransmissions (and forked 2xx) go to the TU, which ACKs them.
    S.ACCEPTED: {
        E.RESPONSE_PROVISIONAL: S.ACCEPTED,
        E.RESPONSE_2XX: S.ACCEPTED,
        E.RESPONSE_FINAL: S.ACCEPTED,
        E.TIMER_LINGER: S.TERMINATED,  # Timer M
    },
    S.TERMINATED: {},
}


@dataclass
class _Timer:
    event: TxEvent
    at: float


@dataclass
class Transaction:
    """Shared machinery: the table, the timers, the last message sent."""

    key: str
    address: Address
    reliable: bool
    now: float
    table: dict[TxState, dict[TxEvent, TxState]] = field(default_factory=dict)
    state: TxState = TxState.TRYING
    last_sent: bytes | None = None
    timed_out: bool = False
    _timers: list[_Timer] = field(default_factory=list)
    _interval: float = T1

    def _move(self, event: TxEvent) -> None:
        target = self.table.get(self.state, {}).get(event)
        if target is None:
            raise TransactionError(f"{type(self).__name__}: {event.name} in {self.state.name}")
        self.state = target

    def _set(self, event: TxEvent, delay: float, now: float) -> None:
        self._timers = [t for t in self._timers if t.event is not event]
        self._timers.append(_Timer(event, now + delay))

    def _clear(self, *events: TxEvent) -> None:
        self._timers = [t for t in self._timers if t.event not in events]

    def deadline(self) -> float | None:
        """When ``on_timer`` should next run, or None."""
        return min((t.at for t in self._timers), default=None)

    @property
    def terminated(self) -> bool:
        return self.state is TxState.TERMINATED

    def on_timer(self, now: float) -> list[bytes]:
        """Fire every timer that is due; returns what to (re)send."""
        out: list[bytes] = []
        for timer in sorted((t for t in self._timers if t.at <= now), key=lambda t: t.at):
            if timer not in self._timers:
                continue
            self._timers.remove(timer)
            out += self._fire(timer.event, now)
        return out

    def _fire(self, event: TxEvent, now: float) -> list[bytes]:
        self._move(event)
        if event is TxEvent.TIMER_TIMEOUT:
            self.timed_out = True
        if self.state is TxState.TERMINATED:
            self._timers.clear()
            return []
        if event is TxEvent.TIMER_RETRANSMIT and self.last_sent is not None:
            self._interval = min(self._interval * 2, T2)
            self._set(TxEvent.TIMER_RETRANSMIT, self._interval, now)
            return [self.last_sent]
        return []


class ServerInviteTransaction(Transaction):
    """INVITE received. 2xx retransmission belongs to the dialog (13.3.1.4), not here."""

    def __init__(self, key: str, address: Address, reliable: bool, now: float) -> None:
        super().__init__(key, address, reliable, now, SERVER_INVITE, TxState.PROCEEDING)

    def receive_request(self, now: float) -> list[bytes]:
        """A retransmitted INVITE: repeat the last response, if any (not a 2xx)."""
        self._move(TxEvent.REQUEST)
        if self.state in (TxState.PROCEEDING, TxState.COMPLETED) and self.last_sent:
            return [self.last_sent]
        return []

    def receive_ack(self, now: float) -> bool:
        """An ACK; returns True if it belongs to the TU (the ACK of a 2xx)."""
        if self.state is TxState.ACCEPTED:
            self._move(TxEvent.ACK)
            return True
        if self.state in (TxState.COMPLETED, TxState.CONFIRMED):
            self._move(TxEvent.ACK)
            self._clear(TxEvent.TIMER_RETRANSMIT, TxEvent.TIMER_TIMEOUT)
            if not any(t.event is TxEvent.TIMER_LINGER for t in self._timers):
                self._set(TxEvent.TIMER_LINGER, 0.0 if self.reliable else T4, now)
        return False

    def send_response(self, status: int, data: bytes, now: float) -> list[bytes]:
        if status < 200:
            self._move(TxEvent.SEND_PROVISIONAL)
        elif status < 300:
            self._move(TxEvent.SEND_2XX)
            self._set(TxEvent.TIMER_TIMEOUT, 64 * T1, now)  # Timer L
        else:
            self._move(TxEvent.SEND_FINAL)
            if not self.reliable:
                self._interval = T1
                self._set(TxEvent.TIMER_RETRANSMIT, T1, now)  # Timer G
            self._set(TxEvent.TIMER_TIMEOUT, 64 * T1, now)  # Timer H
        self.last_sent = data
        return [data]


class ServerNonInviteTransaction(Transaction):
    def __init__(self, key: str, address: Address, reliable: bool, now: float) -> None:
        super().__init__(key, address, reliable, now, SERVER_NON_INVITE, TxState.TRYING)

    def receive_request(self, now: float) -> list[bytes]:
        self._move(TxEvent.REQUEST)
        return [self.last_sent] if self.last_sent else []

    def send_response(self, status: int, data: bytes, now: float) -> list[bytes]:
        if status < 200:
            self._move(TxEvent.SEND_PROVISIONAL)
        else:
            self._move(TxEvent.SEND_FINAL)
            self._set(TxEvent.TIMER_LINGER, 0.0 if self.reliable else 64 * T1, now)  # Timer J
        self.last_sent = data
        return [data]


class ClientNonInviteTransaction(Transaction):
    """A request we send (BYE); ``final_status`` is set when it is answered."""

    def __init__(
        self, key: str, address: Address, reliable: bool, now: float, request: bytes
    ) -> None:
        super().__init__(key, address, reliable, now, CLIENT_NON_INVITE, TxState.TRYING)
        self.last_sent = request
        self.final_status: int | None = None
        if not reliable:
            self._set(TxEvent.TIMER_RETRANSMIT, T1, now)  # Timer E
        self._set(TxEvent.TIMER_TIMEOUT, 64 * T1, now)  # Timer F

    def start(self) -> list[bytes]:
        assert self.last_sent is not None
        return [self.last_sent]

    def receive_response(self, status: int, now: float) -> None:
        if status < 200:
            self._move(TxEvent.RESPONSE_PROVISIONAL)
            if any(t.event is TxEvent.TIMER_RETRANSMIT for t in self._timers):
                self._interval = T2 / 2  # doubles to T2 on the next firing
        else:
            self._move(TxEvent.RESPONSE_FINAL)
            if self.final_status is None:
                self.final_status = status
            self._clear(TxEvent.TIMER_RETRANSMIT, TxEvent.TIMER_TIMEOUT)
            if not any(t.event is TxEvent.TIMER_LINGER for t in self._timers):
                self._set(TxEvent.TIMER_LINGER, 0.0 if self.reliable else T4, now)  # Timer K


class ClientInviteTransaction(Transaction):
    """An INVITE we send (RFC 3261 17.1.1, RFC 6026).

    Retransmits the INVITE over UDP (Timer A, doubling without a cap), gives
    up after ``timeout`` without any answer (Timer B: 64*T1 unless the trunk
    says less; a provisional stops it, the UAC then times the ringing),
    sends the ACK of every 3xx-6xx it is given (and again for each repeat,
    Timer D), and leaves the ACK of a 2xx to the dialog.
    """

    def __init__(
        self,
        key: str,
        address: Address,
        reliable: bool,
        now: float,
        request: bytes,
        timeout: float = 64 * T1,
    ) -> None:
        super().__init__(key, address, reliable, now, CLIENT_INVITE, TxState.CALLING)
        self.last_sent = request
        self.final_status: int | None = None
        self.ack: bytes | None = None
        if not reliable:
            self._set(TxEvent.TIMER_RETRANSMIT, T1, now)  # Timer A
        self._set(TxEvent.TIMER_TIMEOUT, timeout, now)  # Timer B

    def start(self) -> list[bytes]:
        assert self.last_sent is not None
        return [self.last_sent]

    def _fire(self, event: TxEvent, now: float) -> list[bytes]:
        if event is TxEvent.TIMER_RETRANSMIT and self.state is TxState.CALLING:
            # Timer A doubles without the T2 cap non-INVITE requests have.
            self._move(event)
            self._interval *= 2
            self._set(TxEvent.TIMER_RETRANSMIT, self._interval, now)
            return [self.last_sent] if self.last_sent is not None else []
        return super()._fire(event, now)

    def receive_response(self, status: int, now: float, ack: bytes | None = None) -> list[bytes]:
        """Feed a response; returns what to send (the ACK of a repeated 3xx-6xx).

        ``ack``: the ACK for a 3xx-6xx (built by the caller from the INVITE
        and this response's To tag), sent now and again for each repeat.
        """
        if status < 200:
            self._move(TxEvent.RESPONSE_PROVISIONAL)
            # Ringing may last: how long is the caller's (the UAC's ring timeout).
            self._clear(TxEvent.TIMER_RETRANSMIT, TxEvent.TIMER_TIMEOUT)
            return []
        if status < 300:
            first = self.state is not TxState.ACCEPTED
            self._move(TxEvent.RESPONSE_2XX)
            if first:
                self.final_status = status
                self._clear(TxEvent.TIMER_RETRANSMIT, TxEvent.TIMER_TIMEOUT)
                self._set(TxEvent.TIMER_LINGER, 64 * T1, now)  # Timer M
            return []
        if self.state is TxState.ACCEPTED:
            self._move(TxEvent.RESPONSE_FINAL)
            return []
        first = self.state is not TxState.COMPLETED
        self._move(TxEvent.RESPONSE_FINAL)
        if first:
            self.final_status = status
            self.ack = ack
            self._clear(TxEvent.TIMER_RETRANSMIT, TxEvent.TIMER_TIMEOUT)
            self._set(TxEvent.TIMER_LINGER, 0.0 if self.reliable else 32.0, now)  # Timer D
        return [self.ack] if self.ack is not None else []
