"""RFC 3263 server location, driven by a table of DNS answers (the real resolver: bridge tests)."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from callbridge.sip.locate import (
    Answer,
    Kind,
    Locator,
    Naptr,
    Query,
    Srv,
    Target,
    naptr_order,
    srv_order,
)


def run(locator: Locator, zone: dict[tuple[str, Kind], Answer]) -> tuple[list[Target], list[Query]]:
    asked: list[Query] = []
    while (query := locator.next_query()) is not None:
        asked.append(query)
        locator.answer(query, zone.get((query.name, query.kind), []))
    return locator.targets, asked


ZONE: dict[tuple[str, Kind], Answer] = {
    ("carrier.test", Kind.NAPTR): [
        Naptr(20, 10, "s", "SIP+D2U", "_sip._udp.carrier.test."),
        Naptr(10, 10, "S", "SIPS+D2T", "_sips._tcp.carrier.test."),
        Naptr(10, 20, "s", "SIP+D2T", "_sip._tcp.carrier.test."),
        Naptr(5, 10, "s", "SIP+D2S", "_sip._sctp.carrier.test."),  # not spoken
        Naptr(5, 10, "u", "E2U+sip", "!^.*$!sip:x@y!"),  # not an SRV replacement
    ],
    ("_sips._tcp.carrier.test", Kind.SRV): [Srv(10, 0, 5061, "edge1.carrier.test.")],
    ("_sip._tcp.carrier.test", Kind.SRV): [Srv(10, 0, 5060, "edge1.carrier.test.")],
    ("_sip._udp.carrier.test", Kind.SRV): [
        Srv(20, 0, 5060, "edge2.carrier.test."),
        Srv(10, 0, 5080, "edge1.carrier.test."),
    ],
    ("edge1.carrier.test", Kind.ADDRESS): ["192.0.2.1", "2001:db8::1"],
    ("edge2.carrier.test", Kind.ADDRESS): ["192.0.2.2"],
    ("carrier.test", Kind.ADDRESS): ["192.0.2.99"],
}


def test_naptr_then_srv_then_addresses_in_order() -> None:
    targets, asked = run(Locator("Carrier.Test."), ZONE)
    assert asked[0] == Query("carrier.test", Kind.NAPTR)
    assert targets == [
        Target("TLS", "192.0.2.1", 5061),
        Target("TLS", "2001:db8::1", 5061),
        Target("TCP", "192.0.2.1", 5060),
        Target("TCP", "2001:db8::1", 5060),
        Target("UDP", "192.0.2.1", 5080),
        Target("UDP", "2001:db8::1", 5080),
        Target("UDP", "192.0.2.2", 5060),
    ]
    # Each name asked once, though edge1 serves three transports.
    assert len(asked) == len(set(asked))


def test_only_the_transports_we_allow_are_followed() -> None:
    targets, _ = run(Locator("carrier.test", transports=("UDP",)), ZONE)
    assert {t.transport for t in targets} == {"UDP"}


def test_a_transport_given_asks_its_srv_and_no_naptr() -> None:
    targets, asked = run(Locator("carrier.test", transport="tcp"), ZONE)
    assert [q.kind for q in asked] == [Kind.SRV, Kind.ADDRESS]
    assert targets == [Target("TCP", "192.0.2.1", 5060), Target("TCP", "2001:db8::1", 5060)]


def test_a_port_given_asks_only_addresses() -> None:
    targets, asked = run(Locator("carrier.test", port=5099), ZONE)
    assert asked == [Query("carrier.test", Kind.ADDRESS)]
    assert targets == [Target("UDP", "192.0.2.99", 5099)]


def test_no_naptr_tries_srv_of_each_transport_then_the_host() -> None:
    zone = {k: v for k, v in ZONE.items() if k[1] is not Kind.NAPTR}
    targets, asked = run(Locator("carrier.test"), zone)
    assert [q.name for q in asked[1:4]] == [
        "_sips._tcp.carrier.test", "_sip._tcp.carrier.test", "_sip._udp.carrier.test",
    ]  # fmt: skip
    assert targets[0] == Target("TLS", "192.0.2.1", 5061)
    # Nothing in DNS but an address: UDP 5060 (4.2); a transport given: its default port.
    bare = {("carrier.test", Kind.ADDRESS): ["192.0.2.99"]}
    assert run(Locator("carrier.test"), bare)[0] == [Target("UDP", "192.0.2.99", 5060)]
    assert run(Locator("carrier.test", transport="TLS"), bare)[0] == [
        Target("TLS", "192.0.2.99", 5061)
    ]


def test_an_ip_literal_asks_nothing_and_nothing_found_is_empty() -> None:
    assert run(Locator("[2001:db8::5]", transport="tcp"), {}) == (
        [Target("TCP", "2001:db8::5", 5060)],
        [],
    )
    assert run(Locator("nowhere.test"), {})[0] == []
    # A lone "." target: the service is explicitly not offered, not even at the host.
    zone: dict[tuple[str, Kind], Answer] = {
        ("_sip._udp.x.test", Kind.SRV): [Srv(0, 0, 0, ".")],
        ("x.test", Kind.ADDRESS): ["not-an-address", "192.0.2.7"],
    }
    assert run(Locator("x.test", transport="udp"), zone)[0] == []
    # Unreadable addresses are skipped.
    del zone[("_sip._udp.x.test", Kind.SRV)]
    assert run(Locator("x.test", transport="udp"), zone)[0] == [Target("UDP", "192.0.2.7", 5060)]


def test_naptr_order_skips_what_we_cannot_use() -> None:
    records = [r for r in ZONE[("carrier.test", Kind.NAPTR)] if isinstance(r, Naptr)]
    assert naptr_order(records, ("UDP", "TCP", "TLS")) == [
        ("TLS", "_sips._tcp.carrier.test"),
        ("TCP", "_sip._tcp.carrier.test"),
        ("UDP", "_sip._udp.carrier.test"),
    ]


def test_srv_weights_share_the_first_place_in_proportion() -> None:
    records = [Srv(10, 60, 5060, "a."), Srv(10, 30, 5060, "b."), Srv(10, 10, 5060, "c.")]
    rng = random.Random(7)
    first = Counter(srv_order(records, rng)[0].target for _ in range(4000))
    assert 0.55 < first["a."] / 4000 < 0.65 and 0.05 < first["c."] / 4000 < 0.15


srvs = st.lists(
    st.builds(
        Srv,
        st.integers(0, 5),
        st.integers(0, 100),
        st.integers(1, 65535),
        st.sampled_from(["a.", "b.", "c.", "d.", "e."]),
    ),
    min_size=2,
    max_size=12,
)


@given(srvs, st.integers(0, 2**32))
def test_srv_order_is_a_permutation_sorted_by_priority(records: list[Srv], seed: int) -> None:
    ordered = srv_order(records, random.Random(seed))
    assert Counter(ordered) == Counter(records)
    priorities = [r.priority for r in ordered]
    assert priorities == sorted(priorities)


@given(
    st.lists(
        st.one_of(
            st.builds(
                Naptr,
                st.integers(0, 9),
                st.integers(0, 9),
                st.sampled_from(["s", "u", ""]),
                st.sampled_from(["SIP+D2U", "SIP+D2T", "SIPS+D2T", "X"]),
                st.sampled_from(["", ".", "_sip._udp.h.test", "_sips._tcp.h.test"]),
            ),
            st.builds(
                Srv,
                st.integers(0, 9),
                st.integers(0, 9),
                st.integers(0, 65535),
                st.sampled_from([".", "h.test", "e.test"]),
            ),
            st.sampled_from(["192.0.2.1", "::1", "junk", ""]),
        ),
        max_size=8,
    ),
    st.sampled_from([None, "udp", "tcp", "tls"]),
)
def test_any_answers_end_in_a_bounded_list_of_targets(
    answer: list[object], transport: str | None
) -> None:
    locator = Locator("h.test", transport=transport, rng=random.Random(1))
    steps = 0
    while (query := locator.next_query()) is not None:
        locator.answer(query, answer)  # type: ignore[arg-type]
        steps += 1
        assert steps < 100
    assert len(locator.targets) <= 16
    assert all(t.transport in ("UDP", "TCP", "TLS") for t in locator.targets)
