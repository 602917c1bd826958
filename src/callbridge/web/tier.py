"""Which requests came from the cache tier in front (``callbridge cache``, ``serve --cache``).

The origin knows its cache nodes by address (``Settings.trusted_proxies``:
``--trusted-proxy``, and 127.0.0.1 with ``--cache``). Only from them does it
believe ``X-Forwarded-For`` (the real client, for the login throttle and the
audit) and the gate cookie the tier keyed on (``gate_cookie.TIER_HEADER``).

``TierPeer`` wraps the whole app: it notes whether the connection's own
peer is a cache node, then lets uvicorn's ``ProxyHeadersMiddleware`` put the
forwarded client in the scope — after which the peer can no longer be told
from the scope, which is why uvicorn itself is started without it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, Final, cast

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The scope key TierPeer sets: True when the connection's peer is a cache node.
VIA_TIER: Final = "callbridge.via_tier"


def is_cache_node(client: tuple[str, int] | None, nodes: Sequence[Network]) -> bool:
    """Whether the connection's peer ``(host, port)`` is in one of the ``nodes`` networks."""
    if client is None or not nodes:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:  # a Unix socket's peer, a test client's name
        return False
    return any(address in network for network in nodes)


class TierPeer:
    """ASGI middleware, outermost: marks requests from the cache tier, then applies X-Forwarded-For.

    Add it last (``app.add_middleware(TierPeer, nodes=...)``) so that it sees
    the connection's own peer before anything rewrites the client.
    """

    def __init__(self, app: ASGIApp, nodes: Sequence[Network] = ()) -> None:
        self.nodes = tuple(nodes)
        self.app: ASGIApp = app
        if self.nodes:
            proxied = ProxyHeadersMiddleware(
                cast(Any, app), trusted_hosts=[str(network) for network in self.nodes]
            )
            self.app = cast(ASGIApp, proxied)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[VIA_TIER] = is_cache_node(scope.get("client"), self.nodes)
        await self.app(scope, receive, send)


def via_tier(connection: HTTPConnection) -> bool:
    """Whether this request reached the origin from one of its cache nodes."""
    return bool(connection.scope.get(VIA_TIER, False))
