"""Where a trunk given by host name is: RFC 3263 server location, without I/O.

``Locator`` decides which DNS questions to ask and in what order, and reads
the answers; the adapter (``bridge.sip_client.resolve``) asks them of a
real resolver. The flow, for a host that is a name (RFC 3263 section 4):

- a port given: the host's addresses (A/AAAA), on that port, the transport
  given (UDP if none);
- a transport given, no port: its SRV records (``_sip._udp``, ``_sip._tcp``,
  ``_sips._tcp``), each target's addresses in SRV order; none: the host's
  addresses on the transport's default port;
- neither: the host's NAPTR records for the services we speak (``SIP+D2U``,
  ``SIP+D2T``, ``SIPS+D2T``; flag ``s``), by order then preference, each
  replacement's SRV records as above; no NAPTR: the SRV records of each
  transport we speak; none of those either: the host's addresses, UDP 5060.

SRV records are ordered as RFC 2782 says: by priority, and within one
priority by a weighted random draw (``rng``, a parameter so tests can fix
it). Every target found is kept in that order: the trunk's failover walks
them. A host given as an IP literal asks nothing.
"""

from __future__ import annotations

import enum
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

# NAPTR services we speak, and the transport each names.
SERVICES = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}
SRV_PREFIX = {"UDP": "_sip._udp", "TCP": "_sip._tcp", "TLS": "_sips._tcp"}
DEFAULT_PORT = {"UDP": 5060, "TCP": 5060, "TLS": 5061}
MAX_TARGETS = 16  # a zone that lists more is not followed further


class Kind(enum.StrEnum):
    NAPTR = "NAPTR"
    SRV = "SRV"
    ADDRESS = "A"  # A and AAAA together


@dataclass(frozen=True)
class Query:
    name: str
    kind: Kind


@dataclass(frozen=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Target:
    """One place to send to: a transport, an address, a port."""

    transport: str
    address: str
    port: int


Answer = Sequence[Naptr] | Sequence[Srv] | Sequence[str]


def _name(value: str) -> str:
    return value.rstrip(".").lower()


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def naptr_order(records: Sequence[Naptr], transports: Sequence[str]) -> list[tuple[str, str]]:
    """(transport, SRV name) of each usable NAPTR record, by order then preference.

    Usable: flag ``s`` (the replacement is an SRV name), a service we speak
    among ``transports``, a replacement and no regexp rewriting (RFC 3263
    uses replacements only). A transport listed twice is followed once.
    """
    usable: list[tuple[int, int, str, str]] = []
    for record in records:
        transport = SERVICES.get(record.service.upper())
        if record.flags.lower() != "s" or transport is None or transport not in transports:
            continue
        replacement = _name(record.replacement)
        if not replacement:
            continue
        usable.append((record.order, record.preference, transport, replacement))
    usable.sort(key=lambda r: (r[0], r[1]))
    seen: set[str] = set()
    ordered: list[tuple[str, str]] = []
    for _, _, transport, replacement in usable:
        if transport not in seen:
            seen.add(transport)
            ordered.append((transport, replacement))
    return ordered


def srv_order(records: Sequence[Srv], rng: random.Random) -> list[Srv]:
    """RFC 2782: lowest priority first; within a priority, weighted random order.

    A lone record with target ``.`` says the service is not offered here: none.
    """
    if len(records) == 1 and _name(records[0].target) == "":
        return []
    ordered: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority and _name(r.target)]
        # Zero-weight records first, so they have a small chance when others weigh more.
        group.sort(key=lambda r: r.weight != 0)
        while group:
            total = sum(r.weight for r in group)
            draw = rng.uniform(0, total) if total else 0.0
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= draw:
                    ordered.append(group.pop(index))
                    break
    return ordered


@dataclass
class _Step:
    transport: str
    name: str
    port: int


@dataclass
class Locator:
    """RFC 3263's questions for one host, asked one at a time; ``targets`` once done."""

    host: str
    port: int | None = None
    transport: str | None = None
    transports: Sequence[str] = ("TLS", "TCP", "UDP")
    rng: random.Random = field(default_factory=random.Random)
    targets: list[Target] = field(default_factory=list)
    _queue: list[Query] = field(default_factory=list)
    # Per pending SRV name: its transport; per pending address name: (transport, port)s.
    _srv: dict[str, str] = field(default_factory=dict)
    _addresses: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    _srv_fallback: list[str] = field(default_factory=list)  # transports whose SRV we try blind
    _asked: set[Query] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.transport is not None:
            self.transport = self.transport.upper()
        host = _name(self.host.strip("[]"))
        self.host = host
        if is_ip(host):
            transport = self.transport or "UDP"
            self.targets.append(Target(transport, host, self.port or DEFAULT_PORT[transport]))
        elif self.port is not None:
            self._want_addresses(host, self.transport or "UDP", self.port)
        elif self.transport is not None:
            self._want_srv(self.transport, f"{SRV_PREFIX[self.transport]}.{host}")
        else:
            self._ask(Query(host, Kind.NAPTR))

    # -- the adapter's side ----------------------------------------------------------

    def next_query(self) -> Query | None:
        """The next question to ask (None: done, ``targets`` is the answer)."""
        return self._queue.pop(0) if self._queue else None

    def answer(self, query: Query, records: Answer) -> None:
        """What the resolver said to ``query`` (nothing, for NXDOMAIN or no records)."""
        if query.kind is Kind.NAPTR:
            self._naptr([r for r in records if isinstance(r, Naptr)])
        elif query.kind is Kind.SRV:
            self._srv_answer(query.name, [r for r in records if isinstance(r, Srv)])
        else:
            addresses = [a for a in records if isinstance(a, str) and is_ip(a)]
            for transport, port in self._addresses.get(query.name, []):
                for address in addresses:
                    target = Target(transport, address.strip("[]"), port)
                    if target not in self.targets and len(self.targets) < MAX_TARGETS:
                        self.targets.append(target)

    # -- the flow ------------------------------------------------------------------------

    def _ask(self, query: Query) -> None:
        if query not in self._asked:
            self._asked.add(query)
            self._queue.append(query)

    def _want_srv(self, transport: str, name: str) -> None:
        self._srv[name] = transport
        self._ask(Query(name, Kind.SRV))

    def _want_addresses(self, name: str, transport: str, port: int) -> None:
        wanted = self._addresses.setdefault(name, [])
        if (transport, port) not in wanted:
            wanted.append((transport, port))
        self._ask(Query(name, Kind.ADDRESS))

    def _naptr(self, records: list[Naptr]) -> None:
        ordered = naptr_order(records, self.transports)
        if ordered:
            for transport, name in ordered:
                self._want_srv(transport, name)
            return
        # No NAPTR we can use (4.1): the SRV records of each transport we speak.
        self._srv_fallback = list(self.transports)
        for transport in self.transports:
            self._want_srv(transport, f"{SRV_PREFIX[transport]}.{self.host}")

    def _srv_answer(self, name: str, records: list[Srv]) -> None:
        transport = self._srv.pop(name, "UDP")
        for record in srv_order(records, self.rng):
            self._want_addresses(_name(record.target), transport, record.port)
        blind = bool(self._srv_fallback)
        if records or self._srv or (blind and any(q.kind is Kind.ADDRESS for q in self._asked)):
            return
        # The last SRV question came back empty and nothing was found: the host itself.
        if blind:
            self._want_addresses(self.host, "UDP", DEFAULT_PORT["UDP"])
        elif self.transport is not None:
            self._want_addresses(self.host, self.transport, DEFAULT_PORT[self.transport])
        else:
            # NAPTR named SRV names that have no records: nothing (4.1 says fail).
            return
