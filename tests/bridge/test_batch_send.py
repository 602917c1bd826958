from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from callbridge.bridge.batch_send import BatchSender, batch_sender, sockaddr
from tests.support.uring import uring


def sockets(count: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """``count`` sending sockets and as many receivers, all on loopback."""
    senders, receivers = [], []
    for _ in range(count):
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out.bind(("127.0.0.1", 0))
        out.setblocking(False)
        into = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        into.bind(("127.0.0.1", 0))
        into.settimeout(2)
        senders.append(out)
        receivers.append(into)
    return senders, receivers


def rows(count: int, size: int = 20) -> np.ndarray:
    buffer = np.zeros((count, size), dtype=np.uint8)
    for row in range(count):
        buffer[row] = row + 1
    return buffer


def test_each_row_goes_from_its_own_socket_to_its_own_address(sender: BatchSender) -> None:
    out, into = sockets(5)
    buffer = rows(5)
    target = sender.target(out, [r.getsockname() for r in into], buffer)
    lengths = np.array([20, 19, 18, 17, 16], dtype=np.uint32)
    failed = target.send(np.arange(5), lengths)
    assert failed.tolist() == []
    for row, receiver in enumerate(into):
        data, source = receiver.recvfrom(100)
        assert data == bytes([row + 1]) * int(lengths[row])
        assert source == out[row].getsockname()  # symmetric RTP: from the leg's own port
    # Only some rows this time, the buffer rewritten in place.
    buffer[:] = 0xAA
    assert target.send(np.array([1, 3]), lengths).tolist() == []
    assert into[1].recv(100) == b"\xaa" * 19
    assert into[3].recv(100) == b"\xaa" * 17
    into[0].settimeout(0.1)
    with pytest.raises(TimeoutError):
        into[0].recv(100)
    target.close()
    for s in out + into:
        s.close()


def test_connected_rows_go_without_an_address(sender: BatchSender) -> None:
    out, into = sockets(3)
    remotes = [r.getsockname() for r in into]
    out[1].connect(remotes[1])
    target = sender.target(out, remotes, rows(3), connected=[False, True, False])
    assert target.send(np.arange(3), np.full(3, 20, dtype=np.uint32)).tolist() == []
    assert [r.recv(100)[:1] for r in into] == [b"\x01", b"\x02", b"\x03"]
    for s in out + into:
        s.close()


def test_a_failed_row_is_reported_and_the_others_still_go(sender: BatchSender) -> None:
    out, into = sockets(3)
    target = sender.target(out, [r.getsockname() for r in into], rows(3))
    out[1].close()  # a leg's socket gone under the batch
    failed = target.send(np.arange(3), np.full(3, 20, dtype=np.uint32))
    assert failed.tolist() == [1]
    assert into[0].recv(100)[:1] == b"\x01"
    assert into[2].recv(100)[:1] == b"\x03"
    for s in out + into:
        s.close()


def test_more_rows_than_the_ring_holds_go_in_several_submissions() -> None:
    ring = uring(entries=4)
    out, into = sockets(10)
    target = ring.target(out, [r.getsockname() for r in into], rows(10))
    for _ in range(3):
        assert target.send(np.arange(10), np.full(10, 20, dtype=np.uint32)).tolist() == []
    time.sleep(0.05)
    for row, receiver in enumerate(into):
        assert [receiver.recv(100)[:1] for _ in range(3)] == [bytes([row + 1])] * 3
    assert ring.submitted == 30
    ring.close()
    for s in out + into:
        s.close()


def test_sockaddr_packs_both_families_and_refuses_names() -> None:
    v4 = sockaddr("192.0.2.7", 5004)
    assert len(v4) == 16
    assert v4[2:4] == (5004).to_bytes(2, "big") and v4[4:8] == bytes([192, 0, 2, 7])
    v6 = sockaddr("2001:db8::1", 5004)
    assert len(v6) == 28
    assert v6[8:24] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    with pytest.raises(ValueError, match="not an IP address"):
        sockaddr("sbc.example.net", 5004)


def test_batch_sender_can_be_told_to_use_sendto() -> None:
    assert batch_sender("sendto").name == "sendto"
    chosen = batch_sender()
    assert chosen.name in ("io_uring", "sendto")
    chosen.close()
