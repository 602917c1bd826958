"""Which of our addresses a peer is told: the one we bind, or the one a NAT maps to it.

On a cloud VM the interface has a private address and a public one is
mapped onto it (a 1:1 NAT, or a port-forward of the SIP port and the RTP
range). A carrier told the private address (in Contact, in a BYE's Via, in
the SDP's ``o=``/``c=``) sends its in-dialog requests and its media
nowhere. ``Advertised`` says, per peer, which address to name: a peer in one
of the local networks (and loopback, always) gets the bind address, anyone
else the advertised one, as Asterisk's ``local_net`` and
``external_media_address`` do. ``rport`` and symmetric RTP are unaffected:
responses still go to where a request came from.

SIP and media are chosen apart. The SIP address follows the signalling
peer's source address. The media address is the private one only when both
the signalling peer and the media address its offer names are local: behind
a proxy on the private network (``callbridge proxy``, Kamailio) the INVITE
comes from the proxy, but the media comes straight from the carrier, which
needs the public address; and a caller whose SDP names a private address
that happens to look local, but whose SIP came from outside, is outside.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Loopback is always local: nothing outside the machine comes from there.
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def parse_host_port(text: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT``; raises ValueError."""
    text = text.strip()
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"not HOST[:PORT]: {text!r}")
        if rest:
            port = int(rest[1:])
        ipaddress.IPv6Address(host)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = int(port_text)
    else:
        host = text  # a name, an IPv4 address, or a bare IPv6 address
    if not host or any(c in host for c in " \t;,<>\"'"):
        raise ValueError(f"not a host: {text!r}")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return host, port


def hostport(host: str, port: int) -> str:
    """``host:port`` as a SIP URI or Via writes it (IPv6 in brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


@dataclass(frozen=True)
class Advertised:
    """Our addresses as each peer must be told them; pure, no I/O.

    ``bind_host`` is the address the sockets are bound to. ``sip_host``/
    ``sip_port`` (None: the bound ones) and ``media_host`` (None: the bound
    one) are what peers outside ``local_networks`` are told.
    """

    bind_host: str
    sip_host: str | None = None
    sip_port: int | None = None
    media_host: str | None = None
    local_networks: tuple[Network, ...] = ()

    def __post_init__(self) -> None:
        if self.media_host is not None:
            try:
                ipaddress.ip_address(self.media_host)
            except ValueError:
                # SDP's c= takes a name too, but carriers do not resolve one.
                raise ValueError(f"the media address must be an IP: {self.media_host!r}") from None

    @property
    def any(self) -> bool:
        """Is anything advertised other than the bind address?"""
        return self.sip_host is not None or self.sip_port is not None or self.media_host is not None

    def is_local(self, host: str | None) -> bool:
        """Is ``host`` (an address as a socket or an SDP writes it) in a local network?

        A name, or anything that is not an address, is not local.
        """
        if host is None:
            return False
        if host.startswith("::ffff:"):
            host = host[7:]  # an IPv4 peer heard on a dual-stack socket
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(
            address.version == network.version and address in network
            for network in (*LOOPBACK, *self.local_networks)
        )

    def sip_for(self, peer: str, bound_port: int) -> tuple[str, int]:
        """Host and port for our Contact and Via, as the peer at ``peer`` must see them."""
        if self.is_local(peer):
            return self.bind_host, bound_port
        return self.sip_host or self.bind_host, self.sip_port or bound_port

    def media_for(self, peer: str, offered: str | None) -> str:
        """Our SDP address for a call signalled from ``peer`` whose offer names ``offered``."""
        if self.media_host is None or (self.is_local(peer) and self.is_local(offered)):
            return self.bind_host
        return self.media_host
