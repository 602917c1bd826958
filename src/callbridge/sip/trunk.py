"""Who may talk SIP to us, decided from the source address before a byte is parsed.

Only the carriers' trunks (the allow-list) place calls. Anyone else is
refused at the cheapest point: a UDP datagram from a stranger is counted and
dropped, or answered once with a stateless 403 that is never retransmitted
and opens no transaction (``TrunkGate.refuse`` says which; at most one
answer per source per second and ``ANSWERS_PER_SECOND`` in all, so the
server cannot be made to reflect a flood at a forged source). A TCP
connection from a stranger is closed on accept. A refusal is logged at most
once per source per minute.

Sans-IO: addresses and ``now`` in, decisions out; ``echo_response`` builds
the stateless answer from the request's raw bytes without parsing it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from callbridge.sip.dialog import new_tag
from callbridge.sip.message import Headers, SipResponse, canonical_name
from callbridge.throttle import Throttle

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ANSWERS_PER_SECOND = 16  # stateless 403s, all sources together
LOG_INTERVAL = 60.0  # one "refused" log line per source per this long
_CACHE_MAX = 4096  # source addresses remembered (allowed or not)


@dataclass(frozen=True)
class Refusal:
    """What to do with a stranger's datagram: answer it (once) and/or log it."""

    answer: bool
    log: bool


class TrunkGate:
    """The trunk allow-list, and what a stranger's datagrams and connections get."""

    def __init__(self, networks: tuple[Network, ...]) -> None:
        self.networks = networks
        self.refused = 0  # datagrams and connections from strangers
        self._known: dict[str, bool] = {}
        self._answers = Throttle(1.0, max_keys=ANSWERS_PER_SECOND)
        self._logs = Throttle(LOG_INTERVAL, max_keys=64)

    def allowed(self, host: str) -> bool:
        """Is ``host`` (an address as the socket gave it) on a trunk network? Cached."""
        known = self._known.get(host)
        if known is None:
            try:
                ip = ipaddress.ip_address(host.partition("%")[0])
            except ValueError:
                known = False
            else:
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                known = any(ip in net for net in self.networks)
            if len(self._known) >= _CACHE_MAX:
                self._known.clear()
            self._known[host] = known
        return known

    def refuse(self, host: str, now: float) -> Refusal:
        """Count one datagram (or connection) from the stranger ``host``; say what it gets."""
        self.refused += 1
        return Refusal(answer=self._answers.allow(host, now), log=self._logs.allow(host, now))

    def suppressed_logs(self) -> int:
        """Refusals not logged since the last call."""
        return self._logs.take_suppressed()


_NEEDED = ("Via", "From", "To", "Call-ID", "CSeq")


def echo_response(data: bytes, status: int, reason: str) -> bytes | None:
    """A stateless response to the request in ``data``, or None if it cannot be addressed.

    Only the headers that correlate a response (Via, From, To, Call-ID,
    CSeq) are copied, minus unprintable characters; nothing else is read.
    Responses and ACKs get nothing.
    """
    text = data[:8192].decode("utf-8", errors="replace")
    lines = re.split(r"\r?\n", text)
    start = lines[0] if lines else ""
    if start.startswith("SIP/") or not start.strip() or start.split(" ")[0] == "ACK":
        return None
    needed: dict[str, list[str]] = {name: [] for name in _NEEDED}
    for line in lines[1:]:
        if not line.strip():
            break
        name, sep, value = line.partition(":")
        if sep and (canonical := canonical_name(name.strip())) in needed:
            needed[canonical].append("".join(ch for ch in value.strip() if ch.isprintable()))
    if not all(needed.values()):
        return None
    headers = Headers()
    for name, values in needed.items():
        for value in values:
            headers.add(name, value)
    response = SipResponse(status, reason, headers)
    if ";tag=" not in needed["To"][0]:
        response.headers.set("To", f"{needed['To'][0]};tag={new_tag()}")
    return response.serialize()
