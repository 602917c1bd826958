"""The endpoint in memory: a scripted caller on one side, a test clock on the other."""

from __future__ import annotations

import ipaddress

from callbridge.sip.endpoint import (
    CallCancelled,
    CallConfirmed,
    CallEnded,
    DtmfInfo,
    EndpointConfig,
    IncomingCall,
    ReInvite,
    SipEndpoint,
)
from callbridge.sip.message import SipResponse, parse_message
from callbridge.sip.sdp import SdpSession
from tests.sip.uac import OFFER, Uac


def endpoint(**overrides: object) -> SipEndpoint:
    return SipEndpoint(EndpointConfig(**overrides))  # type: ignore[arg-type]


def responses(ep: SipEndpoint) -> list[SipResponse]:
    out = []
    for data, _addr in ep.datagrams_to_send():
        message = parse_message(data)
        assert isinstance(message, SipResponse)
        out.append(message)
    return out


def events(ep: SipEndpoint) -> list[object]:
    out = []
    while (event := ep.next_event()) is not None:
        out.append(event)
    return out


def answered_call(ep: SipEndpoint, uac: Uac, now: float = 0.0) -> str:
    ep.receive_datagram(uac.invite(), uac.addr, now)
    assert [r.status for r in responses(ep)] == [100]
    (incoming,) = events(ep)
    assert isinstance(incoming, IncomingCall)
    answer = SdpSession("127.0.0.1").negotiate(incoming.offer, 20000).answer
    ep.answer(incoming.call_id, answer, now)
    (ok,) = ep.datagrams_to_send()
    uac.learn(ok[0])
    return incoming.call_id


def test_invite_answer_ack_bye() -> None:
    ep, uac = endpoint(), Uac()
    ep.receive_datagram(uac.invite(), uac.addr, 0.0)
    (trying,) = responses(ep)
    assert trying.status == 100
    (incoming,) = events(ep)
    assert isinstance(incoming, IncomingCall)
    assert incoming.dialled == "19135550123"
    assert incoming.caller == "Analyst"
    ep.ring(incoming.call_id, 0.1)
    (ringing,) = responses(ep)
    assert ringing.status == 180
    answer = SdpSession("127.0.0.1").negotiate(incoming.offer, 20000).answer
    ep.answer(incoming.call_id, answer, 0.2)
    (ok,) = responses(ep)
    assert ok.status == 200
    assert b"m=audio 20000 RTP/AVP 0 101" in ok.body
    assert "tag=" in (ok.headers.get("To") or "")
    assert "received=127.0.0.1" in (ok.headers.get("Via") or "")
    assert "rport=5070" in (ok.headers.get("Via") or "")
    uac.learn(ok.serialize())
    ep.receive_datagram(uac.ack_2xx(), uac.addr, 0.3)
    assert events(ep) == [CallConfirmed(incoming.call_id)]
    ep.receive_datagram(uac.bye(), uac.addr, 5.0)
    assert [r.status for r in responses(ep)] == [200]
    assert events(ep) == [CallEnded(incoming.call_id, "bye")]
    assert ep.active_calls == 0


def test_2xx_repeats_until_ack_then_gives_up_with_bye() -> None:
    ep, uac = endpoint(), Uac()
    call_id = answered_call(ep, uac)
    times = []
    now = 0.0
    while now < 40:
        timer = ep.get_timer()
        assert timer is not None
        now = timer
        ep.handle_timer(now)
        sent = ep.datagrams_to_send()
        if any(d.startswith(b"SIP/2.0 200") for d, _ in sent):
            times.append(round(now, 2))
        if any(d.startswith(b"BYE ") for d, _ in sent):
            break
    # Timer G-style doubling capped at T2 (section 13.3.1.4), until 64*T1.
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert 31.5 <= now <= 32.5
    assert CallEnded(call_id, "no ack") in events(ep)


def test_retransmitted_invite_repeats_the_provisional() -> None:
    ep, uac = endpoint(), Uac()
    invite = uac.invite()
    ep.receive_datagram(invite, uac.addr, 0.0)
    responses(ep)
    events(ep)
    ep.receive_datagram(invite, uac.addr, 0.5)
    assert [r.status for r in responses(ep)] == [100]
    assert events(ep) == []


def test_cancel_before_answer() -> None:
    ep, uac = endpoint(), Uac()
    ep.receive_datagram(uac.invite(), uac.addr, 0.0)
    responses(ep)
    (incoming,) = events(ep)
    ep.receive_datagram(uac.cancel(), uac.addr, 1.0)
    statuses = [(r.status, r.cseq[1]) for r in responses(ep)]
    assert statuses == [(200, "CANCEL"), (487, "INVITE")]
    assert events(ep) == [CallCancelled(incoming.call_id)]
    # The 487 repeats until the ACK, which the transaction absorbs.
    ep.handle_timer(1.5)
    assert [r.status for r in responses(ep)] == [487]
    ep.receive_datagram(uac.ack_error(), uac.addr, 1.6)
    ep.handle_timer(3.0)
    assert responses(ep) == []


def test_bye_from_our_side_is_retransmitted_until_answered() -> None:
    ep, uac = endpoint(), Uac()
    call_id = answered_call(ep, uac)
    ep.receive_datagram(uac.ack_2xx(), uac.addr, 0.1)
    events(ep)
    ep.hangup(call_id, 1.0)
    (bye,) = ep.datagrams_to_send()
    assert bye[0].startswith(b"BYE sip:analyst@127.0.0.1:5070 SIP/2.0")
    assert bye[1] == ("127.0.0.1", 5070)
    assert events(ep) == [CallEnded(call_id, "hangup")]
    ep.handle_timer(1.5)
    (again,) = ep.datagrams_to_send()
    assert again[0] == bye[0]
    request = parse_message(bye[0])
    branch = request.headers.get("Via").split("branch=")[1].split(";")[0]  # type: ignore[union-attr]
    ok = (
        "SIP/2.0 200 OK\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n"
        f"From: {request.headers.get('From')}\r\nTo: {request.headers.get('To')}\r\n"
        f"Call-ID: {request.headers.get('Call-ID')}\r\nCSeq: {request.headers.get('CSeq')}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    ep.receive_datagram(ok, uac.addr, 1.6)
    ep.handle_timer(3.0)
    assert ep.datagrams_to_send() == []


def test_options_and_unknown_methods() -> None:
    ep, uac = endpoint(), Uac()
    ep.receive_datagram(uac.options(), uac.addr, 0.0)
    (ok,) = responses(ep)
    assert ok.status == 200
    assert "INVITE" in (ok.headers.get("Allow") or "")
    register = uac.options().replace(b"OPTIONS", b"REGISTER")
    ep.receive_datagram(register, uac.addr, 0.0)
    assert [r.status for r in responses(ep)] == [405]
    frob = uac.options().replace(b"OPTIONS", b"FROBNICATE")
    ep.receive_datagram(frob, uac.addr, 0.0)
    assert [r.status for r in responses(ep)] == [501]


def test_in_dialog_requests_for_unknown_dialogs_get_481() -> None:
    ep, uac = endpoint(), Uac()
    uac.to_tag = "nope"
    ep.receive_datagram(uac.bye(), uac.addr, 0.0)
    assert [r.status for r in responses(ep)] == [481]


def test_outsiders_get_403() -> None:
    ep = endpoint(allowed_networks=(ipaddress.ip_network("10.1.0.0/16"),))
    uac = Uac()
    ep.receive_datagram(uac.invite(), uac.addr, 0.0)
    assert [r.status for r in responses(ep)] == [403]
    assert events(ep) == []


def test_no_common_codec_is_488() -> None:
    ep, uac = endpoint(), Uac()
    g729_only = OFFER.replace("0 8 101", "18").replace("a=rtpmap:0 PCMU/8000\r\n", "")
    g729_only = g729_only.replace("a=rtpmap:8 PCMA/8000\r\n", "")
    ep.receive_datagram(uac.invite(), uac.addr, 0.0)
    responses(ep)
    (incoming,) = events(ep)
    try:
        SdpSession("127.0.0.1").negotiate(g729_only.encode(), 20000)
    except Exception as exc:  # the application answers the SipError's status
        ep.reject(incoming.call_id, exc.status, 0.1)  # type: ignore[attr-defined]
    assert [r.status for r in responses(ep)] == [488]


def test_reinvite_for_hold_is_reported_and_answered() -> None:
    ep, uac = endpoint(), Uac()
    call_id = answered_call(ep, uac)
    ep.receive_datagram(uac.ack_2xx(), uac.addr, 0.1)
    events(ep)
    hold = OFFER.replace("a=sendrecv", "a=sendonly")
    ep.receive_datagram(uac.reinvite(hold), uac.addr, 2.0)
    assert [r.status for r in responses(ep)] == [100]
    (reinvite,) = events(ep)
    assert isinstance(reinvite, ReInvite)
    negotiated = SdpSession("127.0.0.1").negotiate(reinvite.offer, 20000)
    assert negotiated.on_hold
    ep.answer_reinvite(call_id, negotiated.answer, 2.1)
    (ok,) = responses(ep)
    assert ok.status == 200 and b"a=recvonly" in ok.body


def test_sip_info_dtmf() -> None:
    ep, uac = endpoint(), Uac()
    call_id = answered_call(ep, uac)
    ep.receive_datagram(uac.ack_2xx(), uac.addr, 0.1)
    events(ep)
    ep.receive_datagram(uac.info("5"), uac.addr, 1.0)
    assert [r.status for r in responses(ep)] == [200]
    assert events(ep) == [DtmfInfo(call_id, "5", 160)]


def test_capacity_limit_is_503() -> None:
    ep = endpoint(max_calls=1)
    ep.receive_datagram(Uac().invite(), ("127.0.0.1", 5070), 0.0)
    responses(ep)
    ep.receive_datagram(Uac(5072).invite(), ("127.0.0.1", 5072), 0.0)
    assert [r.status for r in responses(ep)] == [503]


def test_malformed_request_gets_400_naming_the_problem() -> None:
    ep, uac = endpoint(), Uac()
    bad = uac.options().replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    ep.receive_datagram(bad, uac.addr, 0.0)
    (response,) = responses(ep)
    assert response.status == 400
    assert "CSeq method" in response.reason


def test_garbage_is_dropped_and_counted() -> None:
    ep = endpoint()
    ep.receive_datagram(b"\x00\xff garbage \r\n\r\n", ("127.0.0.1", 5070), 0.0)
    assert ep.datagrams_to_send() == []
    assert ep.stats.dropped == 1


def test_a_stranger_gets_one_stateless_403_at_most_and_nothing_is_kept() -> None:
    ep = endpoint(allowed_networks=(ipaddress.ip_network("10.1.0.0/16"),))
    uac = Uac()
    invite = uac.invite()
    ep.receive_datagram(invite, uac.addr, 0.0)
    assert [r.status for r in responses(ep)] == [403]
    # No transaction: nothing to repeat, no timer, no call.
    assert ep.get_timer() is None
    for now in (0.1, 0.5, 0.9):
        ep.receive_datagram(invite, uac.addr, now)  # retransmissions within the second
        ep.handle_timer(now)
    assert responses(ep) == []
    assert ep.active_calls == 0 and events(ep) == []
    assert ep.gate.refused == 4
    # Another source is answered (once) too; the same one again a second later.
    ep.receive_datagram(invite, ("127.0.0.9", 5070), 1.0)
    ep.receive_datagram(invite, uac.addr, 1.5)
    assert [r.status for r in responses(ep)] == [403, 403]


def test_answers_to_strangers_are_bounded_in_all() -> None:
    ep = endpoint(allowed_networks=(ipaddress.ip_network("10.1.0.0/16"),))
    invite = Uac().invite()
    for n in range(1000):  # as many forged sources
        ep.receive_datagram(invite, (f"127.0.{n // 250}.{n % 250 + 1}", 5060), 0.5)
    assert 0 < len(ep.datagrams_to_send()) <= 16
    assert ep.gate.refused == 1000


def test_refusing_a_stranger_is_cheap() -> None:
    import time

    ep = endpoint(allowed_networks=(ipaddress.ip_network("10.1.0.0/16"),))
    invite = Uac().invite()
    count = 20_000
    started = time.perf_counter()
    for n in range(count):
        ep.receive_datagram(invite, ("127.0.0.2", 5070), n / 10_000)  # a flood: 10,000/s
    refused = (time.perf_counter() - started) / count
    ep.datagrams_to_send()
    trunk = endpoint()
    started = time.perf_counter()
    for _ in range(200):
        trunk.receive_datagram(Uac().invite(), ("127.0.0.1", 5070), 0.0)
    served = (time.perf_counter() - started) / 200
    print(
        f"\nrefusing a stranger's INVITE: {refused * 1e6:.1f} us "
        f"(a trunk's INVITE: {served * 1e6:.0f} us to parse and open)"
    )
    assert refused < served / 3


def test_a_message_that_breaks_the_handling_is_answered_500() -> None:
    ep, uac = endpoint(), Uac()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    ep._receive_invite = broken  # type: ignore[method-assign]
    ep.receive_datagram(uac.invite(), uac.addr, 0.0)
    assert [r.status for r in responses(ep)] == [500]
    ep.receive_datagram(Uac().options(), uac.addr, 0.1)
    assert [r.status for r in responses(ep)] == [200]


def test_over_tls_the_contact_says_so_and_a_sips_dialog_gets_a_sips_contact() -> None:
    for uri, contact in (
        ("sip:", "<sip:callbridge@127.0.0.1:5061;transport=tls>"),
        ("sips:", "<sips:callbridge@127.0.0.1:5061>"),
    ):
        ep, uac = endpoint(transport="TLS", port=5061), Uac()
        invite = (
            uac.invite()
            .replace(b"UDP", b"TLS")
            .replace(b"INVITE sip:", b"INVITE " + uri.encode(), 1)
        )
        ep.receive_datagram(invite, uac.addr, 0.0)
        (incoming,) = events(ep)
        assert isinstance(incoming, IncomingCall)
        ep.ring(incoming.call_id, 0.1)
        answer = SdpSession("127.0.0.1").negotiate(incoming.offer, 20000).answer
        ep.answer(incoming.call_id, answer, 0.2)
        _trying, ringing, ok = (
            parse_message(data, stream=True) for data, _ in ep.datagrams_to_send()
        )
        assert isinstance(ringing, SipResponse) and isinstance(ok, SipResponse)
        assert (ringing.status, ok.status) == (180, 200)
        assert ringing.headers.get("Contact") == ok.headers.get("Contact") == contact
        assert (ok.headers.get("Via") or "").startswith("SIP/2.0/TLS")


def test_every_response_is_counted_by_status_once() -> None:
    ep, uac = endpoint(), Uac()
    invite = uac.invite()
    ep.receive_datagram(invite, uac.addr, 0.0)
    (incoming,) = events(ep)
    assert isinstance(incoming, IncomingCall)
    ep.ring(incoming.call_id, 0.1)
    ep.receive_datagram(invite, uac.addr, 0.5)  # a retransmission: the 180 again, not counted
    answer = SdpSession("127.0.0.1").negotiate(incoming.offer, 20000).answer
    ep.answer(incoming.call_id, answer, 0.6)
    uac.learn([d for d, _ in ep.datagrams_to_send() if d.startswith(b"SIP/2.0 200")][-1])
    ep.receive_datagram(uac.ack_2xx(), uac.addr, 0.7)
    ep.receive_datagram(uac.bye(), uac.addr, 5.0)
    ep.receive_datagram(uac.options().replace(b"OPTIONS", b"REGISTER"), uac.addr, 5.1)
    assert ep.stats.responses == {100: 1, 180: 1, 200: 2, 405: 1}
