"""The gate cookie's one reading (web/gate_cookie.py), and who is the cache tier (web/tier.py).

The same rule runs in Varnish (deploy/varnish/callbridge.vcl); tests/edge/
test_gate_cookie.py holds the two together. Here: the rule itself, on the
forms that once opened the gate, and its fuzz invariant.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import HTTPConnection

from callbridge.web.gate_cookie import (
    TIER_HEADER,
    MalformedGateCookie,
    gate_value,
    join_cookie_headers,
    read_gate_cookie,
)
from callbridge.web.tier import TierPeer, is_cache_node, via_tier

VALUE = "wl_" + "A" * 32 + "." + "0123456789abcdef" * 2
OTHER = "wl_" + "B" * 32 + "." + "fedcba9876543210" * 2


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("", ""),
        ("callbridge_session=abc; theme=dark", ""),
        (f"cb_wc_1={VALUE}", VALUE),
        (f"a=1; cb_wc_1={VALUE}; b=2", VALUE),
        (f"cb_wc_2={OTHER}; cb_wc_1={VALUE}", VALUE),
        (f"cb_wc_2={OTHER}", ""),
        (f"cb_wc_12={VALUE}", ""),
    ],
)
def test_a_well_formed_header_gives_the_events_value(header: str, value: str) -> None:
    assert read_gate_cookie(header, 1) == value


@pytest.mark.parametrize(
    "header",
    [
        f"cb_wc_1 ={VALUE}",  # the form that opened the gate
        f"cb_wc_1\t={VALUE}",
        f"cb_wc_1= {VALUE}",
        f"cb_wc_1={VALUE} ",
        f'cb_wc_1="{VALUE}"',
        f"cb_wc_1=; cb_wc_1={VALUE}",  # an empty duplicate first
        f"cb_wc_1={VALUE}; cb_wc_1={VALUE}",
        f"cb_wc_1={OTHER}; a=1; cb_wc_1={VALUE}",
        f"CB_WC_1={VALUE}",
        f"cb%5Fwc_1={VALUE}",
        f"cb_wc_%31={VALUE}",
        f"cb_wc_01={VALUE}",
        f"a=1;cb_wc_1={VALUE}",
        f"a=1;  cb_wc_1={VALUE}",
        f"a=1, cb_wc_1={VALUE}",
        "cb_wc_1=",
        "cb_wc_1",
        "cb_wc_1=garbage",
        f"cb_wc_2= {OTHER}; cb_wc_1={VALUE}",  # another event's, malformed
        f"a=cb_wc_1; cb_wc_1={VALUE}",
    ],
)
def test_odd_spaced_quoted_recased_encoded_or_duplicate_gate_cookies_are_malformed(
    header: str,
) -> None:
    with pytest.raises(MalformedGateCookie):
        read_gate_cookie(header, 1)


def test_several_cookie_headers_are_read_as_one() -> None:
    assert read_gate_cookie(join_cookie_headers(["a=1", f"cb_wc_1={VALUE}"]), 1) == VALUE
    with pytest.raises(MalformedGateCookie):
        read_gate_cookie(join_cookie_headers([f"cb_wc_1={OTHER}", f"cb_wc_1={VALUE}"]), 1)


# Pieces the odd forms are made of, and a whole valid value.
_PIECES = st.sampled_from([*"cbw_C%5fF=; \t\"'.,01a", VALUE, "cb_wc_1=", "cb_wc_2="])


@settings(max_examples=300)
@given(st.lists(_PIECES, max_size=30).map("".join), st.integers(1, 3))
def test_the_reading_returns_a_value_or_its_own_error(header: str, event_id: int) -> None:
    try:
        value = read_gate_cookie(header, event_id)
    except MalformedGateCookie:
        return
    # A value it returns is one a well-formed crumb of that event carried, whole.
    assert value == "" or f"cb_wc_{event_id}={value}" in header


@given(st.binary(max_size=200))
def test_any_latin1_header_is_read_or_refused(raw: bytes) -> None:
    with contextlib.suppress(MalformedGateCookie):
        read_gate_cookie(raw.decode("latin-1"), 1)


def _connection(client: tuple[str, int], headers: list[tuple[bytes, bytes]], via: bool) -> Any:
    return HTTPConnection(
        {"type": "http", "client": client, "headers": headers, "callbridge.via_tier": via}
    )


def test_the_tiers_value_counts_only_from_the_tier() -> None:
    headers = [(b"cookie", f"cb_wc_1={VALUE}".encode()), (TIER_HEADER.encode(), b"")]
    assert gate_value(_connection(("127.0.0.1", 1), headers, via=True), 1) == ""
    assert gate_value(_connection(("192.0.2.7", 1), headers, via=False), 1) == VALUE
    # From the tier without its header (a page, a beacon: passed, never cached): the same rule.
    cookie_only = headers[:1]
    assert gate_value(_connection(("127.0.0.1", 1), cookie_only, via=True), 1) == VALUE


def test_a_cache_node_is_told_by_the_connections_own_peer() -> None:
    nodes = (ipaddress.ip_network("10.0.1.0/24"),)
    assert is_cache_node(("10.0.1.9", 4000), nodes)
    assert not is_cache_node(("10.0.2.9", 4000), nodes)
    assert not is_cache_node(("testclient", 50000), nodes)
    assert not is_cache_node(None, nodes)
    assert not is_cache_node(("10.0.1.9", 4000), ())


async def _run(peer: str, forwarded: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["via"] = via_tier(HTTPConnection(scope))
        seen["client"] = scope["client"][0]

    middleware = TierPeer(app, nodes=(ipaddress.ip_network("127.0.0.1/32"),))
    scope = {
        "type": "http",
        "client": (peer, 5555),
        "headers": [(b"x-forwarded-for", forwarded.encode())],
    }
    await middleware(scope, None, None)  # type: ignore[arg-type]
    return seen


def test_the_tier_is_marked_before_x_forwarded_for_names_the_client() -> None:
    assert asyncio.run(_run("127.0.0.1", "198.51.100.4")) == {
        "via": True,
        "client": "198.51.100.4",
    }
    # Anyone else's X-Forwarded-For is not believed, and they are not the tier.
    assert asyncio.run(_run("198.51.100.9", "127.0.0.1")) == {
        "via": False,
        "client": "198.51.100.9",
    }
