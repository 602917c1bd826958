"""The trunk gate and the throttle behind it: decisions from an address and a clock."""

from __future__ import annotations

import ipaddress

from callbridge.sip.trunk import ANSWERS_PER_SECOND, TrunkGate, echo_response
from callbridge.throttle import Throttle
from tests.sip.uac import Uac


def test_the_allow_list_reads_addresses_as_sockets_give_them() -> None:
    gate = TrunkGate((ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("fe80::/64")))
    assert gate.allowed("127.0.0.1")
    assert gate.allowed("::ffff:127.0.0.1")  # an IPv4 trunk on a dual-stack socket
    assert gate.allowed("fe80::1%eth0")
    assert not gate.allowed("127.0.0.2")
    assert not gate.allowed("not an address")


def test_a_stranger_is_answered_once_a_second_and_logged_once_a_minute() -> None:
    gate = TrunkGate((ipaddress.ip_network("10.0.0.0/8"),))
    first = gate.refuse("127.0.0.2", 0.0)
    assert first.answer and first.log
    again = [gate.refuse("127.0.0.2", t / 10) for t in range(1, 10)]
    assert not any(r.answer or r.log for r in again)
    later = gate.refuse("127.0.0.2", 1.5)
    assert later.answer and not later.log
    assert gate.refuse("127.0.0.2", 61.0).log
    assert gate.refused == 12
    answered = sum(gate.refuse(f"192.0.2.{n}", 100.0).answer for n in range(100))
    assert answered == ANSWERS_PER_SECOND


def test_the_throttle_forgets_keys_whose_interval_passed() -> None:
    throttle = Throttle(1.0, max_keys=2)
    assert throttle.allow("a", 0.0) and throttle.allow("b", 0.0)
    assert not throttle.allow("c", 0.5)  # full
    assert throttle.allow("c", 1.5)  # a and b expired
    assert throttle.take_suppressed() == 1 and throttle.take_suppressed() == 0


def test_the_stateless_answer_echoes_only_what_correlates() -> None:
    invite = Uac().invite()
    answer = echo_response(invite, 403, "Forbidden")
    assert answer is not None and answer.startswith(b"SIP/2.0 403 Forbidden\r\n")
    assert b"Call-ID:" in answer and b";tag=" in answer and b"Contact" not in answer
    assert echo_response(Uac().ack_error(), 403, "Forbidden") is None
    assert echo_response(b"SIP/2.0 200 OK\r\n\r\n", 403, "Forbidden") is None
    assert echo_response(b"\x00\xff garbage", 403, "Forbidden") is None
