"""The pure parts of issue 27's web limits: the per-address and per-event buckets, and who
X-Forwarded-For names (the real server's side is in test_question_flood.py and
test_forwarded_and_logins.py)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import HTTPConnection

from callbridge.throttle import Rate
from callbridge.web.forwarded import MAX_HOPS, forwarded_client
from callbridge.web.limits import WebLimits
from callbridge.web.tier import TierPeer, via_tier

CACHE = [ipaddress.ip_network("10.0.1.0/24")]


def test_questions_stop_per_address_and_per_event_and_a_refusal_spends_nothing() -> None:
    limits = WebLimits(questions=(Rate(2, 10.0), Rate(3, 5.0)))
    take = limits.questions.take
    assert take(1, "192.0.2.1", 0.0) is None and take(1, "192.0.2.1", 0.0) is None
    mine = take(1, "192.0.2.1", 0.0)
    assert mine is not None and "from your network" in mine.message and mine.retry_after == 10
    assert take(2, "192.0.2.1", 0.0) is None  # another event: its own count
    assert take(1, "192.0.2.2", 0.0) is None  # the event's third
    everyone = take(1, "192.0.2.3", 0.0)
    assert everyone is not None and "on this webcast" in everyone.message
    # The refused ones spent nothing: the event's bucket refills in 5 s, not later.
    assert take(1, "192.0.2.3", 5.0) is None
    limits.questions.give_back(1, "192.0.2.3", 5.0)
    assert take(1, "192.0.2.3", 5.0) is None


def test_browser_ids_come_at_a_bounded_rate_per_address() -> None:
    limits = WebLimits(browser_ids=Rate(3, 6.0))
    assert [limits.browser_id("192.0.2.1", 0.0) for _ in range(3)] == [None] * 3
    refused = limits.browser_id("192.0.2.1", 1.0)
    assert refused is not None and refused.retry_after == 5.0
    assert limits.browser_id("192.0.2.2", 1.0) is None
    assert limits.browser_id("192.0.2.1", 6.0) is None


def test_the_rightmost_untrusted_address_is_the_client() -> None:
    assert forwarded_client([b"203.0.113.9, 198.51.100.7"], ()) == "198.51.100.7"
    assert forwarded_client([b"203.0.113.9", b"10.0.1.5"], tuple(CACHE)) == "203.0.113.9"
    assert forwarded_client([b"10.0.1.4, 10.0.1.5"], tuple(CACHE)) == "10.0.1.4"
    assert forwarded_client([b"203.0.113.9, nonsense"], ()) is None  # nothing left of junk
    assert forwarded_client([b"2001:db8::1"], ()) == "2001:db8::1"


@given(st.lists(st.binary(max_size=200), max_size=5))
def test_any_header_gives_an_address_or_none(values: list[bytes]) -> None:
    found = forwarded_client(values, tuple(CACHE))
    assert found is None or ipaddress.ip_address(found)


def test_a_long_chain_is_read_from_its_tail_only() -> None:
    chain = ", ".join(["nonsense"] + [f"10.0.1.{n}" for n in range(MAX_HOPS)])
    assert forwarded_client([chain.encode()], tuple(CACHE)) == "10.0.1.0"


def _client_seen(scope: dict[str, Any], **kwargs: Any) -> Any:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["client"] = scope["client"]
        seen["tier"] = via_tier(HTTPConnection(scope))

    asyncio.run(TierPeer(app, **kwargs)(scope, None, None))  # type: ignore[arg-type]
    assert seen["tier"] == (seen["client"] != scope.get("_peer"))
    return seen["client"]


def test_only_the_caches_socket_and_trusted_proxies_are_believed(tmp_path: Any) -> None:
    socket = tmp_path / "origin.sock"
    header = [(b"x-forwarded-for", b"203.0.113.9")]

    def scope(client: Any, server: Any) -> dict[str, Any]:
        # _peer: the connection's own client, for the check that only the tier is rewritten.
        return {
            "type": "http",
            "headers": header,
            "client": client,
            "server": server,
            "_peer": client,
        }

    local = ("127.0.0.1", 40000)
    # A local process on the TCP port: itself, whatever it claims.
    assert _client_seen(scope(local, ("127.0.0.1", 8001)), cache_socket=socket) == local
    # The cache, on its socket: the client it names.
    on_socket = scope(None, (str(socket), None))
    assert _client_seen(on_socket, cache_socket=socket) == ("203.0.113.9", 0)
    # Another Unix socket is not the cache's.
    assert _client_seen(scope(None, ("/tmp/other.sock", None)), cache_socket=socket) is None
    # A cache node on another host, given with --trusted-proxy.
    node = ("10.0.1.5", 50000)
    assert _client_seen(scope(node, ("10.0.0.5", 8000)), nodes=CACHE) == ("203.0.113.9", 0)
    assert _client_seen(scope(("10.0.2.5", 1), ("10.0.0.5", 8000)), nodes=CACHE)[0] == "10.0.2.5"
