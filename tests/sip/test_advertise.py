"""Advertised addresses behind a NAT: the rule per peer, and the endpoint's Contact and Via."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.sip.advertise import Advertised, hostport, parse_host_port
from callbridge.sip.endpoint import EndpointConfig, IncomingCall, SipEndpoint
from callbridge.sip.message import SipResponse, parse_message
from callbridge.sip.sdp import SdpSession, offered_host
from tests.sip.uac import OFFER, Uac

PRIVATE = "10.0.0.5"
PUBLIC = "203.0.113.10"
NAT = Advertised(
    PRIVATE,
    sip_host=PUBLIC,
    sip_port=5080,
    media_host=PUBLIC,
    local_networks=(ipaddress.ip_network("10.0.0.0/8"),),
)


def test_peers_outside_the_local_nets_get_the_advertised_addresses() -> None:
    assert NAT.sip_for("198.51.100.7", 5060) == (PUBLIC, 5080)
    assert NAT.media_for("198.51.100.7", "198.51.100.7") == PUBLIC


def test_local_peers_and_loopback_get_the_bind_address() -> None:
    assert NAT.sip_for("10.1.2.3", 5060) == (PRIVATE, 5060)
    assert NAT.sip_for("127.0.0.1", 5060) == (PRIVATE, 5060)
    assert NAT.sip_for("::ffff:10.1.2.3", 5060) == (PRIVATE, 5060)
    assert NAT.media_for("10.1.2.3", "10.1.2.3") == PRIVATE


def test_media_is_private_only_when_both_signalling_and_media_are_local() -> None:
    # A proxy on the private network relays a carrier whose media comes straight in.
    assert NAT.media_for("10.0.0.3", "198.51.100.7") == PUBLIC
    # A caller behind its own NAT names a private address, but signals from outside.
    assert NAT.media_for("198.51.100.7", "10.9.9.9") == PUBLIC
    assert NAT.media_for("10.0.0.3", None) == PUBLIC


def test_nothing_advertised_is_the_bind_address_for_everyone() -> None:
    plain = Advertised(PRIVATE)
    assert not plain.any
    assert plain.sip_for("198.51.100.7", 5060) == (PRIVATE, 5060)
    assert plain.media_for("198.51.100.7", "198.51.100.7") == PRIVATE


def test_the_media_address_must_be_an_ip() -> None:
    with pytest.raises(ValueError, match="must be an IP"):
        Advertised(PRIVATE, media_host="sip.example.com")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("203.0.113.10", ("203.0.113.10", None)),
        ("203.0.113.10:5080", ("203.0.113.10", 5080)),
        ("sip.example.com", ("sip.example.com", None)),
        ("[2001:db8::1]:5080", ("2001:db8::1", 5080)),
        ("2001:db8::1", ("2001:db8::1", None)),
    ],
)
def test_host_port_parses(text: str, parsed: tuple[str, int | None]) -> None:
    assert parse_host_port(text) == parsed


@pytest.mark.parametrize("text", ["", "a:0", "a:70000", "a:b", "[::1", "[::1]x", "a;b", "[zz]"])
def test_host_port_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_port(text)


@given(st.text(max_size=40))
def test_host_port_parses_or_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_host_port(text)


def test_hostport_brackets_ipv6() -> None:
    assert hostport("2001:db8::1", 5060) == "[2001:db8::1]:5060"
    assert hostport("10.0.0.5", 5060) == "10.0.0.5:5060"


def _endpoint() -> SipEndpoint:
    return SipEndpoint(
        EndpointConfig(
            host=PRIVATE,
            port=5060,
            allowed_networks=(ipaddress.ip_network("0.0.0.0/0"),),
            advertised=NAT,
        )
    )


def _answered(ep: SipEndpoint, uac: Uac) -> SipResponse:
    ep.receive_datagram(uac.invite(), uac.addr, 0.0)
    ep.datagrams_to_send()
    incoming = ep.next_event()
    assert isinstance(incoming, IncomingCall)
    ep.answer(incoming.call_id, b"v=0\r\n", 0.1)
    ((data, _),) = ep.datagrams_to_send()
    ok = parse_message(data)
    assert isinstance(ok, SipResponse)
    uac.learn(data)
    return ok


@pytest.mark.parametrize(
    ("peer", "contact", "via"),
    [
        ("198.51.100.7", f"{PUBLIC}:5080", f"SIP/2.0/UDP {PUBLIC}:5080;"),
        ("10.1.2.3", f"{PRIVATE}:5060", f"SIP/2.0/UDP {PRIVATE}:5060;"),
    ],
)
def test_contact_and_our_byes_via_name_the_address_the_peer_reaches(
    peer: str, contact: str, via: str
) -> None:
    ep, uac = _endpoint(), Uac()
    uac.addr = (peer, 5070)
    ok = _answered(ep, uac)
    assert ok.headers.get("Contact") == f"<sip:callbridge@{contact}>"
    ep.receive_datagram(uac.ack_2xx(), uac.addr, 0.2)
    call_id = uac.call_id
    ep.hangup(call_id, 1.0)
    ((bye, _),) = ep.datagrams_to_send()
    request = parse_message(bye)
    assert (request.headers.get("Via") or "").startswith(via)


def test_sdp_answer_names_the_chosen_address() -> None:
    assert offered_host(OFFER.encode()) == "127.0.0.1"
    assert offered_host(b"garbage") is None
    host = NAT.media_for(
        "198.51.100.7", offered_host(OFFER.replace("127.0.0.1", "198.51.100.7").encode())
    )
    answer = SdpSession(host).negotiate(OFFER.encode(), 20000).answer.decode()
    assert f"c=IN IP4 {PUBLIC}" in answer
    assert f"IN IP4 {PUBLIC}\r\n" in answer.split("o=")[1].split("\r\n")[0] + "\r\n"


def test_behind_a_proxy_on_the_lan_sip_stays_private_and_media_goes_public() -> None:
    """Kamailio (callbridge proxy) on the LAN: its dispatcher relays a carrier's in-dialog
    requests only to a node's own address, so the Contact it sees must be the private one;
    the carrier's media comes straight in, so the SDP must name the public one."""
    ep, uac = _endpoint(), Uac()
    uac.addr = ("10.0.0.3", 5060)  # the proxy, in NAT's local net
    ok = _answered(ep, uac)
    assert ok.headers.get("Contact") == f"<sip:callbridge@{PRIVATE}:5060>"
    carrier_offer = OFFER.replace("127.0.0.1", "198.51.100.7").encode()
    assert NAT.media_for(uac.addr[0], offered_host(carrier_offer)) == PUBLIC
