"""Who the client is: the connection's peer, unless the origin's own cache says otherwise.

The login throttle, the per-address limits (``web.limits``) and the audit
key on the client's address. Behind the cache tier every connection comes
from the cache, which names the browser in ``X-Forwarded-For`` (Varnish
appends the address it was connected from). That header is believed only
from:

- the origin's own cache, recognised by the socket it came in on: ``serve
  --cache`` makes the web app listen for it on a Unix socket
  (``Settings.cache_socket``) that only the cache's user can open (a folder
  of mode 0700, or 0750 with Varnish's group when run as root, see
  ``edge.varnish.origin_socket``). An address or a port would not do: any
  process on the machine can connect to 127.0.0.1, on any port, and send
  the header; a secret header would sit in a VCL file Varnish's user must
  read and in its shared-memory log. A Unix socket's permissions are the
  kernel's to enforce, and Varnish 7.1 speaks to a backend on one (``.path``).
- addresses given with ``--trusted-proxy`` (cache nodes on other hosts).

Anyone else's header is ignored: a local process that sends
``X-Forwarded-For`` to the origin's TCP port is the address it connected
from (127.0.0.1), and is limited as such. From the right, the first address
that is not itself a trusted proxy is the client; a malformed entry ends
the search (nothing left of it is believed).

``tier.TierPeer`` applies this, outermost in the app, and sets
``scope["client"]`` in place, so uvicorn's access log names the client too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A header longer than this many entries is a forgery or a loop; only its tail is read.
MAX_HOPS = 16


def forwarded_client(values: Iterable[bytes], trusted: tuple[Network, ...]) -> str | None:
    """The client that ``X-Forwarded-For`` header values name, or None if none can be believed."""
    entries = b",".join(values).decode("latin-1").split(",")[-MAX_HOPS:]
    for entry in reversed(entries):
        try:
            address = ipaddress.ip_address(entry.strip())
        except ValueError:
            return None
        if not any(address in net for net in trusted):
            return str(address)
    # Every hop was a trusted proxy: the leftmost is as close to the client as it gets.
    return str(ipaddress.ip_address(entries[0].strip())) if entries else None


def on_socket(scope: Scope, path: str | None) -> bool:
    """Whether the request came in on the Unix socket ``path`` (the origin's own cache's)."""
    server = scope.get("server")
    # On a Unix socket uvicorn names the server by its path, and no port.
    return path is not None and server is not None and server[1] is None and server[0] == path


def apply_forwarded(scope: Scope, trusted: tuple[Network, ...]) -> None:
    """Put the client the (believed) ``X-Forwarded-For`` names in ``scope``; call only for the
    tier's own requests. ``X-Forwarded-Proto`` sets the scheme of an HTTP request."""
    values = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
    client = forwarded_client(values, trusted) if values else None
    if client is not None:
        scope["client"] = (client, 0)
    for name, value in scope["headers"]:
        if (
            scope["type"] == "http"
            and name == b"x-forwarded-proto"
            and value in (b"http", b"https")
        ):
            scope["scheme"] = value.decode()
