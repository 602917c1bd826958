"""The UAS side of a SIP dialog (RFC 3261 section 12).

A dialog is born from an INVITE we answer: its id is Call-ID plus the two
tags, its remote target is the caller's Contact, its route set the
Record-Route of the INVITE. In-dialog requests we send (BYE) are built here;
in-dialog requests we receive are checked here (CSeq must rise).
"""

from __future__ import annotations

import enum
import ipaddress
import secrets

from callbridge.sip.advertise import hostport
from callbridge.sip.errors import SipError
from callbridge.sip.grammar import BRANCH_COOKIE
from callbridge.sip.message import Headers, NameAddr, SipRequest, SipUri

Address = tuple[str, int]


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


_DIALOG_TRANSITIONS: dict[DialogState, frozenset[DialogState]] = {
    DialogState.EARLY: frozenset({DialogState.CONFIRMED, DialogState.TERMINATED}),
    DialogState.CONFIRMED: frozenset({DialogState.TERMINATED}),
    DialogState.TERMINATED: frozenset(),
}


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(8)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Dialog:
    """One call's dialog, seen from us, the answering side."""

    def __init__(self, invite: SipRequest, source: Address, local_tag: str | None = None) -> None:
        self.call_id = invite.call_id
        self.local_tag = local_tag or new_tag()
        remote = NameAddr.parse(invite.headers.get("From") or "")
        if remote.tag is None:
            raise SipError(400, "From without a tag")
        self.remote_tag: str = remote.tag
        self.remote_uri = str(remote.uri)
        self.local_uri = str(NameAddr.parse(invite.headers.get("To") or "").uri)
        contact = invite.headers.get("Contact")
        if contact is None:
            raise SipError(400, "INVITE without a Contact")
        self.remote_target = NameAddr.parse(contact).uri
        self.route_set = invite.headers.get_all("Record-Route")
        self.remote_cseq = invite.cseq[0]
        self.local_cseq = secrets.randbelow(10_000) + 1
        self.source = source
        self.state = DialogState.EARLY

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    def move(self, target: DialogState) -> None:
        if target not in _DIALOG_TRANSITIONS[self.state]:
            raise SipError(500, f"dialog cannot go from {self.state.value} to {target.value}")
        self.state = target

    def check_request(self, request: SipRequest) -> None:
        """Validate an in-dialog request's CSeq (12.2.2): lower than before is a 500."""
        number, method = request.cseq
        if method == "ACK":
            return
        if number <= self.remote_cseq and method != "CANCEL":
            raise SipError(500, "CSeq lower than a previous request's")
        self.remote_cseq = number

    def next_hop(self) -> Address:
        """Where in-dialog requests go: first route, else the remote target.

        Host names are not resolved here (no DNS in the core); a name falls
        back to the address the INVITE came from, which is what a trunk or a
        phone behind NAT needs anyway.
        """
        uri = NameAddr.parse(self.route_set[0]).uri if self.route_set else self.remote_target
        if uri.scheme == "tel" or not _is_ip(uri.host):
            return self.source
        return (uri.host.strip("[]"), uri.port or 5060)

    def make_request(
        self, method: str, local_host: str, local_port: int, transport: str, user_agent: str
    ) -> SipRequest:
        """A new in-dialog request (BYE, INFO) with the next local CSeq."""
        self.local_cseq += 1
        uri = self.remote_target
        routes = list(self.route_set)
        if routes and ";lr" not in routes[0]:
            # Strict routing (RFC 2543): the first route becomes the Request-URI.
            uri = NameAddr.parse(routes.pop(0)).uri
            routes.append(f"<{self.remote_target}>")
        headers = Headers()
        headers.add(
            "Via",
            f"SIP/2.0/{transport} {hostport(local_host, local_port)};branch={new_branch()};rport",
        )
        headers.add("Max-Forwards", "70")
        for route in routes:
            headers.add("Route", route)
        headers.add("From", f"<{self.local_uri}>;tag={self.local_tag}")
        headers.add("To", f"<{self.remote_uri}>;tag={self.remote_tag}")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.local_cseq} {method}")
        headers.add("User-Agent", user_agent)
        return SipRequest(method, str(uri) if isinstance(uri, SipUri) else uri, headers)
