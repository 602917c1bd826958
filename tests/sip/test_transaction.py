from __future__ import annotations

import pytest

from callbridge.sip.transaction import (
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TransactionError,
    TxState,
)

ADDR = ("127.0.0.1", 5070)


def fire_all(
    txn: ServerInviteTransaction | ClientNonInviteTransaction, until: float
) -> list[float]:
    """Run the transaction's timers up to ``until``; returns when it sent something."""
    sent_at = []
    while (deadline := txn.deadline()) is not None and deadline <= until:
        if txn.on_timer(deadline):
            sent_at.append(round(deadline, 3))
    return sent_at


def test_invite_error_response_retransmits_with_timer_g_until_timer_h() -> None:
    txn = ServerInviteTransaction("k", ADDR, reliable=False, now=0.0)
    txn.send_response(486, b"486", 0.0)
    assert txn.state is TxState.COMPLETED
    sent = fire_all(txn, 40)
    assert sent[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    assert txn.state is TxState.TERMINATED
    assert txn.timed_out


def test_ack_stops_retransmission_and_lingers_t4() -> None:
    txn = ServerInviteTransaction("k", ADDR, reliable=False, now=0.0)
    txn.send_response(487, b"487", 0.0)
    assert not txn.receive_ack(0.7)
    assert txn.state is TxState.CONFIRMED
    assert txn.deadline() == pytest.approx(5.7)
    assert fire_all(txn, 10) == []
    assert txn.state is TxState.TERMINATED


def test_reliable_transport_needs_no_retransmission() -> None:
    txn = ServerInviteTransaction("k", ADDR, reliable=True, now=0.0)
    txn.send_response(486, b"486", 0.0)
    assert fire_all(txn, 31) == []
    txn.receive_ack(1.0)
    fire_all(txn, 1.0)
    assert txn.state is TxState.TERMINATED


def test_2xx_moves_to_accepted_and_passes_the_ack_up() -> None:
    txn = ServerInviteTransaction("k", ADDR, reliable=False, now=0.0)
    txn.send_response(100, b"100", 0.0)
    assert txn.receive_request(0.1) == [b"100"]
    txn.send_response(200, b"200", 0.2)
    assert txn.state is TxState.ACCEPTED
    assert txn.receive_request(0.3) == []  # the dialog repeats the 2xx, not us
    assert txn.receive_ack(0.4)
    fire_all(txn, 40)
    assert txn.state is TxState.TERMINATED


def test_non_invite_server_repeats_final_then_ends_after_timer_j() -> None:
    txn = ServerNonInviteTransaction("k", ADDR, reliable=False, now=0.0)
    txn.send_response(200, b"200", 0.0)
    assert txn.receive_request(1.0) == [b"200"]
    assert txn.deadline() == pytest.approx(32.0)


def test_client_non_invite_timer_e_then_f() -> None:
    txn = ClientNonInviteTransaction("b", ADDR, reliable=False, now=0.0, request=b"BYE")
    assert txn.start() == [b"BYE"]
    sent = fire_all(txn, 40)
    assert sent[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert txn.timed_out and txn.state is TxState.TERMINATED


def test_client_final_response_completes() -> None:
    txn = ClientNonInviteTransaction("b", ADDR, reliable=False, now=0.0, request=b"BYE")
    txn.receive_response(200, 0.2)
    assert txn.final_status == 200
    assert fire_all(txn, 10) == []
    assert txn.state is TxState.TERMINATED


def test_unlisted_transition_raises() -> None:
    txn = ServerNonInviteTransaction("k", ADDR, reliable=False, now=0.0)
    txn.send_response(200, b"200", 0.0)
    with pytest.raises(TransactionError):
        txn.send_response(200, b"200", 0.1)
