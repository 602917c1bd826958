from __future__ import annotations

import pytest

from callbridge.sip.transaction import (
    CLIENT_INVITE,
    ClientInviteTransaction,
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


def test_client_invite_transaction_follows_its_table() -> None:
    txn = ClientInviteTransaction("b", ("192.0.2.1", 5060), False, 0.0, b"INVITE", timeout=5.0)
    assert txn.state is TxState.CALLING and txn.deadline() == 0.5
    assert txn.on_timer(0.5) == [b"INVITE"] and txn.deadline() == 1.5  # Timer A doubles
    assert txn.receive_response(180, 0.6) == [] and txn.deadline() is None  # B stops
    assert txn.receive_response(486, 0.7, ack=b"ACK") == [b"ACK"]
    assert txn.state is TxState.COMPLETED and txn.final_status == 486
    assert txn.receive_response(486, 0.8, ack=b"other") == [b"ACK"]  # the same ACK again
    assert txn.on_timer(32.7) == [] and txn.terminated  # Timer D
    # Every state lists what it takes; anything else raises.
    assert set(CLIENT_INVITE) == {
        TxState.CALLING, TxState.PROCEEDING, TxState.COMPLETED, TxState.ACCEPTED,
        TxState.TERMINATED,
    }  # fmt: skip
    done = ClientInviteTransaction("c", ("192.0.2.1", 5060), True, 0.0, b"INVITE")
    assert done.deadline() == 32.0  # TCP: Timer B only
    done.receive_response(200, 0.1)
    assert done.state is TxState.ACCEPTED and done.deadline() == 0.1 + 32.0  # Timer M
    done.receive_response(200, 0.2)
    done.on_timer(40.0)
    assert done.terminated
    with pytest.raises(TransactionError):
        done.receive_response(180, 41.0)
