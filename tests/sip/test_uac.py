"""The UAC core in memory: a test-side carrier answers what it sends, the clock is ours."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.sip import digest
from callbridge.sip.message import SipRequest, SipResponse, make_response, parse_message
from callbridge.sip.uac import (
    Answered,
    ClientConfig,
    Credentials,
    Ended,
    Failed,
    KeyInfo,
    Registered,
    RegistrationFailed,
    RegState,
    ReInvite,
    Ringing,
    Route,
    SipClient,
)

TRUNK = ("192.0.2.10", 5060)
PROXY_RR = "<sip:192.0.2.20:5070;lr>"
CREDS = Credentials("bridge", "s3cret")
CHALLENGE = 'Digest realm="carrier", nonce="abc123", qop="auth", algorithm={}'
OFFER = b"v=0\r\n"


def client() -> SipClient:
    return SipClient(
        ClientConfig("127.0.0.1", 5090, allowed=frozenset({"192.0.2.10", "192.0.2.20"}))
    )


def sent(core: SipClient) -> list[tuple[SipRequest, tuple[str, int]]]:
    out = []
    for data, addr in core.datagrams_to_send():
        message = parse_message(data)
        assert isinstance(message, SipRequest)
        out.append((message, addr))
    return out


def events(core: SipClient) -> list[object]:
    out: list[object] = []
    while (event := core.next_event()) is not None:
        out.append(event)
    return out


def answer(core: SipClient, request: SipRequest, status: int, now: float, **kw: object) -> None:
    headers = list(kw.pop("headers", []))  # type: ignore[call-overload]
    response = make_response(request, status, to_tag="callee", headers=headers, **kw)  # type: ignore[arg-type]
    core.receive_datagram(response.serialize(), TRUNK, now)


def verify(request: SipRequest, header: str, password: str) -> bool:
    value = request.headers.get(header) or ""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', value))
    challenge = digest.Challenge("carrier", "abc123", fields["algorithm"], ("auth",))
    good = digest.answer(
        challenge, "bridge", password, request.method, fields["uri"], cnonce=fields["cnonce"]
    )
    return bool(good.response == fields["response"])


def test_invite_challenged_answered_and_routed() -> None:
    core = client()
    route = Route(TRUNK, "carrier.example", credentials=CREDS)
    core.invite("c1", route, "+15551230000", OFFER, 0.0)
    [(first, addr)] = sent(core)
    assert addr == TRUNK and first.uri == "sip:+15551230000@carrier.example"
    assert "Proxy-Authorization" not in first.headers
    answer(core, first, 407, 0.1, headers=[
        ("Proxy-Authenticate", CHALLENGE.format("MD5")),
        ("Proxy-Authenticate", CHALLENGE.format("SHA-256")),
    ])  # fmt: skip
    (ack, _), (second, _) = sent(core)
    assert ack.method == "ACK" and ack.top_via.branch == first.top_via.branch
    assert second.cseq[0] == first.cseq[0] + 1 and second.call_id == first.call_id
    assert "algorithm=SHA-256" in (second.headers.get("Proxy-Authorization") or "")
    assert verify(second, "Proxy-Authorization", "s3cret")
    assert "s3cret" not in second.serialize().decode()
    answer(core, second, 180, 0.2)
    assert events(core) == [Ringing("c1", 180)]
    answer(core, second, 200, 0.3, body=b"v=0\r\nanswer", headers=[
        ("Record-Route", PROXY_RR), ("Contact", "<sip:callee@192.0.2.30:5080>"),
    ])  # fmt: skip
    [(ack2, hop)] = sent(core)
    assert hop == ("192.0.2.20", 5070)
    assert ack2.uri == "sip:callee@192.0.2.30:5080" and ack2.headers.get("Route") == PROXY_RR
    assert events(core) == [Answered("c1", b"v=0\r\nanswer")]
    # The 2xx again: ACKed again, told once.
    answer(core, second, 200, 0.8, body=b"v=0\r\nanswer")
    assert [m.method for m, _ in sent(core)] == ["ACK"] and events(core) == []
    core.hangup("c1", 1.0)
    [(bye, hop)] = sent(core)
    assert bye.method == "BYE" and hop == ("192.0.2.20", 5070)
    assert "tag=callee" in (bye.headers.get("To") or "")


def test_wrong_password_fails_at_once() -> None:
    core = client()
    core.invite(
        "c2", Route(TRUNK, "h", credentials=Credentials("bridge", "wrong")), "1", OFFER, 0.0
    )
    for now in (0.1, 0.2):
        request = [m for m, _ in sent(core) if m.method == "INVITE"][-1]
        answer(core, request, 407, now, headers=[("Proxy-Authenticate", CHALLENGE.format("MD5"))])
    assert [m.method for m, _ in sent(core)] == ["ACK"]  # no third INVITE
    [failed] = events(core)
    assert isinstance(failed, Failed) and failed.auth_failed and failed.status == 407
    assert core.stats.auth_failed == 1 and core.active_calls == 0


def test_a_silent_trunk_times_out_after_retransmitting() -> None:
    core = client()
    core.invite("c3", Route(TRUNK, "h", timeout=2.0), "1", OFFER, 0.0)
    times = []
    now = 0.0
    sent(core)
    while (deadline := core.get_timer()) is not None and deadline < 10:
        now = deadline
        core.handle_timer(now)
        if sent(core):
            times.append(now)
    assert times == [0.5, 1.5]  # Timer A: T1, then 2*T1 later
    [failed] = events(core)
    assert isinstance(failed, Failed) and failed.timed_out and failed.status == 408
    assert now == 2.0


def test_ringing_too_long_is_cancelled() -> None:
    core = client()
    core.invite("c4", Route(TRUNK, "h"), "1", OFFER, 0.0, ring_timeout=5.0)
    [(invite, _)] = sent(core)
    answer(core, invite, 180, 0.2)
    events(core)
    core.handle_timer(5.2)
    [(cancel, _)] = sent(core)
    assert cancel.method == "CANCEL" and cancel.top_via.branch == invite.top_via.branch
    answer(core, cancel, 200, 5.3)
    answer(core, invite, 487, 5.4)
    assert [m.method for m, _ in sent(core)] == ["ACK"]
    assert events(core) == [Failed("c4", 487, "no answer")]


def test_callee_hangs_up_and_strangers_are_dropped() -> None:
    core = client()
    core.invite("c5", Route(TRUNK, "h"), "1", OFFER, 0.0)
    [(invite, _)] = sent(core)
    answer(core, invite, 200, 0.1, headers=[("Contact", "<sip:x@192.0.2.10>")])
    sent(core)
    events(core)
    bye = (
        "BYE sip:callbridge@127.0.0.1:5090 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKb1\r\n"
        f"From: <sip:1@h>;tag=callee\r\nTo: {invite.headers.get('From')}\r\n"
        f"Call-ID: {invite.call_id}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    core.receive_datagram(bye, ("203.0.113.9", 5060), 1.0)
    assert sent(core) == [] and core.stats.dropped == 1
    core.receive_datagram(bye, TRUNK, 1.0)
    [data] = core.datagrams_to_send()
    reply = parse_message(data[0])
    assert isinstance(reply, SipResponse) and reply.status == 200
    assert events(core) == [Ended("c5", "bye")]


def test_register_authenticates_and_refreshes_at_half_time() -> None:
    core = client()
    core.register("carrier", Route(TRUNK, "carrier.example", credentials=CREDS), 120, 0.0)
    [(register, _)] = sent(core)
    assert register.uri == "sip:carrier.example" and register.headers.get("Expires") == "120"
    answer(core, register, 401, 0.1, headers=[("WWW-Authenticate", CHALLENGE.format("SHA-256"))])
    [(again, _)] = sent(core)
    assert verify(again, "Authorization", "s3cret") and again.cseq[0] == register.cseq[0] + 1
    answer(core, again, 200, 0.2, headers=[("Contact", "<sip:bridge@127.0.0.1:5090>;expires=60")])
    assert events(core) == [Registered("carrier", 60)]
    assert core.registration("carrier") == (RegState.REGISTERED, 60)
    now: float | None = 0.0
    while not (out := sent(core)):
        now = core.get_timer()
        assert now is not None
        core.handle_timer(now)
    assert now == 30.2
    [(refresh, _)] = out
    assert refresh.method == "REGISTER" and refresh.call_id == register.call_id
    assert "Authorization" not in refresh.headers


def test_register_with_a_wrong_password_fails_and_is_retried() -> None:
    core = client()
    core.register("carrier", Route(TRUNK, "h", credentials=Credentials("bridge", "nope")), 120, 0.0)
    for at in (0.1, 0.2):
        [(request, _)] = sent(core)
        answer(core, request, 401, at, headers=[("WWW-Authenticate", CHALLENGE.format("MD5"))])
    [failed] = events(core)
    assert isinstance(failed, RegistrationFailed) and failed.auth_failed
    assert core.stats.registrations_failed == 1
    assert sent(core) == []
    now: float | None = 0.0
    while not (out := sent(core)):
        now = core.get_timer()
        assert now is not None
        core.handle_timer(now)
    assert now == 30.2 and out[0][0].method == "REGISTER"


def test_a_callee_re_invite_is_answered_and_repeated_until_acked() -> None:
    core = client()
    core.invite("c7", Route(TRUNK, "h"), "1", OFFER, 0.0)
    [(invite, _)] = sent(core)
    answer(core, invite, 200, 0.1, headers=[("Contact", "<sip:x@192.0.2.10>")])
    sent(core)
    events(core)
    head = (
        "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKr{n}\r\n"
        f"From: <sip:1@h>;tag=callee\r\nTo: {invite.headers.get('From')}\r\n"
        f"Call-ID: {invite.call_id}\r\n"
    )
    reinvite = (
        "INVITE sip:callbridge@127.0.0.1:5090 SIP/2.0\r\n" + head.format(n=1)
        + "CSeq: 5 INVITE\r\nContact: <sip:x@192.0.2.10>\r\n"
        "Content-Type: application/sdp\r\nContent-Length: 11\r\n\r\nv=0\r\nhold\r\n"
    ).encode()  # fmt: skip
    core.receive_datagram(reinvite, TRUNK, 1.0)
    assert events(core) == [ReInvite("c7", b"v=0\r\nhold\r\n")]
    core.answer_reinvite("c7", b"v=0\r\nours\r\n", 1.0)
    [(data, to)] = core.datagrams_to_send()
    assert to == TRUNK
    reply = parse_message(data)
    assert (
        isinstance(reply, SipResponse) and reply.status == 200 and reply.body.endswith(b"ours\r\n")
    )
    core.handle_timer(1.5)
    assert [d for d, _ in core.datagrams_to_send()] == [data]  # repeated: no ACK yet
    ack = ("ACK sip:callbridge@127.0.0.1:5090 SIP/2.0\r\n" + head.format(n=2)
           + "CSeq: 5 ACK\r\nContent-Length: 0\r\n\r\n").encode()  # fmt: skip
    core.receive_datagram(ack, TRUNK, 1.6)
    core.handle_timer(10.0)
    assert core.datagrams_to_send() == []
    # A key sent as SIP INFO is the callee's key too.
    info = (
        "INFO sip:callbridge@127.0.0.1:5090 SIP/2.0\r\n" + head.format(n=3)
        + "CSeq: 6 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 24\r\n"
        "\r\nSignal=1\r\nDuration=160\r\n"
    ).encode()  # fmt: skip
    core.receive_datagram(info, TRUNK, 2.0)
    assert events(core) == [KeyInfo("c7", "1")]


@settings(max_examples=100)
@given(st.binary(max_size=600), st.booleans())
def test_whatever_arrives_the_client_never_raises(data: bytes, as_response: bool) -> None:
    core = client()
    core.invite("c6", Route(TRUNK, "h", credentials=CREDS), "1", OFFER, 0.0)
    [(invite, _)] = sent(core)
    prefix = b""
    if as_response:
        prefix = (
            f"SIP/2.0 407 Proxy Authentication Required\r\nVia: {invite.headers.get('Via')}\r\n"
            f"CSeq: {invite.cseq[0]} INVITE\r\nCall-ID: {invite.call_id}\r\n"
            "From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nProxy-Authenticate: "
        ).encode()
    core.receive_datagram(prefix + data, TRUNK, 0.1)
    core.handle_timer(40.0)
    assert core.active_calls in (0, 1)


def test_no_connection_to_a_tls_trunk_fails_its_call_and_registration_at_once() -> None:
    core = client()
    tls = Route(("192.0.2.10", 5061), "carrier.example", "TLS", CREDS, timeout=30.0)
    core.invite("c9", tls, "+15551230000", OFFER, 0.0)
    core.invite("c10", Route(TRUNK, "h"), "+15551230000", OFFER, 0.0)
    core.register("carrier", tls, 600, 0.0)
    requests = sent(core)
    invite = next(m for m, _ in requests if m.call_id == "c9")
    # Over TLS: our Via says so and asks the carrier to use our connection (RFC 5923).
    assert invite.headers.get("Via", "").startswith("SIP/2.0/TLS ")
    assert invite.headers.get("Via", "").endswith(";alias")
    assert ";transport=tls>" in (invite.headers.get("Contact") or "")
    core.transport_failed(("192.0.2.10", 5061), "TLS certificate refused: Hostname mismatch", 0.2)
    failed, reg_failed = events(core)
    assert isinstance(failed, Failed) and failed.call_id == "c9" and failed.status == 503
    assert "Hostname mismatch" in failed.reason and not failed.timed_out
    assert isinstance(reg_failed, RegistrationFailed) and reg_failed.status == 503
    assert core.registration("carrier")[0] is RegState.FAILED
    # The UDP call is not touched; nothing is sent for the failed ones.
    assert core.active_calls == 1 and sent(core) == []


def test_a_registration_over_tls_names_the_endpoints_tls_port() -> None:
    tls = Route(("192.0.2.10", 5061), "carrier.example", "TLS", CREDS)
    for tls_contact, contact in (
        (("127.0.0.1", 5071), "<sip:bridge@127.0.0.1:5071;transport=tls>"),
        (None, "<sip:bridge@127.0.0.1:5070;transport=tcp>"),  # no TLS port: its TCP one
    ):
        core = SipClient(
            ClientConfig(
                "127.0.0.1", 5090, register_contact=("127.0.0.1", 5070),
                register_tls_contact=tls_contact,
            )
        )  # fmt: skip
        core.register("carrier", tls, 600, 0.0)
        [(register, _)] = sent(core)
        assert register.headers.get("Contact") == contact
        granted = contact.replace(">", ">;expires=120")
        answer(core, register, 200, 0.1, headers=[("Contact", granted)])
        assert events(core) == [Registered("carrier", 120)]
