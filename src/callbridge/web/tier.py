"""Which requests came from the cache tier in front (``callbridge cache``, ``serve --cache``).

The origin knows its own cache (``serve --cache``) by the Unix socket it
comes in on (``Settings.cache_socket``; ``web.forwarded`` says why not by
address), and other cache nodes by address (``Settings.trusted_proxies``:
``--trusted-proxy``). Only from them does it believe ``X-Forwarded-For``
(the real client, for the login throttle, the per-address limits and the
audit) and the gate cookie the tier keyed on (``gate_cookie.TIER_HEADER``).
A process on the origin's machine that connects to its TCP port is neither.

``TierPeer`` wraps the whole app: it notes whether the request came from
the tier, then puts the forwarded client in the scope
(``forwarded.apply_forwarded``) — after which the peer can no longer be
told from the scope, which is why uvicorn itself is started without its
proxy headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from callbridge.web.forwarded import apply_forwarded, on_socket

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

    Add it last (``app.add_middleware(TierPeer, nodes=..., cache_socket=...)``)
    so that it sees the connection's own peer before anything rewrites the client.
    """

    def __init__(
        self, app: ASGIApp, nodes: Sequence[Network] = (), cache_socket: Path | None = None
    ) -> None:
        self.app = app
        self.nodes = tuple(nodes)
        self.cache_socket = str(cache_socket) if cache_socket is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            tier = on_socket(scope, self.cache_socket) or is_cache_node(
                scope.get("client"), self.nodes
            )
            scope[VIA_TIER] = tier
            if tier:
                apply_forwarded(scope, self.nodes)
        await self.app(scope, receive, send)


def via_tier(connection: HTTPConnection) -> bool:
    """Whether this request reached the origin from one of its cache nodes."""
    return bool(connection.scope.get(VIA_TIER, False))
