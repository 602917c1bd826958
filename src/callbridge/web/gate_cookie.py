"""The registration gate's cookie, read one way: the cache tier's way.

A registered browser holds ``cb_wc_<event>`` (``webcast.cookie_value``).
Two readers of it once disagreed: Varnish's cookie parser took
``cb_wc_1 =VALUE`` for no cookie, the origin's (Starlette's, which strips
and unquotes) for the browser's, and the origin's "allowed" was cached under
the tier's no-cookie key, for everyone. Now there is one rule, and the tier
and the origin both follow it:

- ``deploy/varnish/callbridge.vcl`` (``callbridge_gate_cookie``) applies it,
  refuses (403) what it does not allow, and sends the origin the value it
  keyed on in ``TIER_HEADER``; the origin decides on that value alone
  (``gate_value``), and says which value it decided on (``DECIDED_HEADER``)
  so the tier keeps the answer only under that key.
- A request that did not come through the tier (``tier.via_tier``) is read
  here by ``read_gate_cookie``, the same rule, so the two readings agree
  (``tests/edge/test_gate_cookie.py`` holds them together on real Varnish).

The rule, on every Cookie header joined with ``"; "`` (Varnish:
``std.collect(req.http.Cookie, "; ")``):

1. Nothing that could name a gate cookie (``cb_wc`` in any case, ``_`` also
   as ``%5F``, anywhere in the header): no cookie, ``""``.
2. Otherwise every such crumb must be exactly ``cb_wc_<event>=<token>.<signature>``,
   at the start of the header or after ``"; "``, and end at ``;`` or at the end:
   no space or tab around the name or ``=``, no quotes, no other case, no
   percent-encoding, no empty value. Anything else is malformed.
3. Each name once: a duplicate (even an empty one first) is malformed.
4. The value of ``cb_wc_<event_id>``, or ``""``.

Stricter than RFC 6265 on purpose: what the rule allows, every cookie
parser reads the same way, and browsers only send what this server set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from starlette.requests import HTTPConnection

from callbridge.web.tier import via_tier

# The header the tier sends the origin with the gate cookie's value it keyed
# on ("" for none), and the one the origin answers with the value it decided on.
TIER_HEADER: Final = "x-cb-gate-cookie"
DECIDED_HEADER: Final = "x-cb-gate-decided"

COOKIE_PREFIX: Final = "cb_wc_"

# cookie-string = cookie-pair *( ";" SP cookie-pair )      (RFC 6265 4.2.1)
SEPARATOR: Final = "; "

# What could name a gate cookie, to some parser: "cb_wc" in any case, the
# underscores also percent-encoded. Found anywhere, name or value.
_GATE_LIKE = re.compile(r"cb(?:_|%5f)wc", re.IGNORECASE | re.ASCII)

# cookie-pair = cookie-name "=" cookie-value; here the name is cb_wc_ and an
# event id (no leading zero, twelve digits at most, as the VCL's routes) and
# the value webcast.cookie_value's: a token (wl_ and urlsafe base64) "." 32
# hex digits. Preceded by the start or "; ", followed by ";" or the end.
_CANONICAL = re.compile(
    r"(?:^|; )cb_wc_([1-9][0-9]{0,11})=([A-Za-z0-9_-]{1,64}\.[0-9a-f]{32})(?=;|$)", re.ASCII
)


class MalformedGateCookie(ValueError):
    """A gate cookie the rule does not allow: the tier answers 403, the origin refuses it too."""


def join_cookie_headers(values: Iterable[str]) -> str:
    """Every Cookie header as one, as the tier joins them (``std.collect``)."""
    return SEPARATOR.join(values)


def read_gate_cookie(header: str, event_id: int) -> str:
    """The value of ``cb_wc_<event_id>`` in a joined Cookie header; ``""`` when there is none.

    Raises ``MalformedGateCookie`` when any gate cookie is odd or sent twice
    (see the module's rule); never anything else.
    """
    if _GATE_LIKE.search(header) is None:
        return ""
    if _GATE_LIKE.search(_CANONICAL.sub("", header)) is not None:
        raise MalformedGateCookie(
            "a webcast cookie is malformed (spaces, quotes, case or encoding)"
        )
    values: dict[str, str] = {}
    for match in _CANONICAL.finditer(header):
        if match.group(1) in values:
            raise MalformedGateCookie("a webcast cookie is sent twice")
        values[match.group(1)] = match.group(2)
    return values.get(str(event_id), "")


def tier_value(connection: HTTPConnection) -> str | None:
    """The gate cookie's value the cache tier keyed this request on; None when not from the tier.

    The tier sends it with every request it gates (and strips their Cookie);
    from anyone but the tier the header means nothing.
    """
    if not via_tier(connection):
        return None
    return connection.headers.get(TIER_HEADER)


def gate_value(connection: HTTPConnection, event_id: int) -> str:
    """The gate cookie's value this request is decided on; ``""`` for none.

    A request the tier gated: the value the tier keyed on, never its Cookie.
    Any other (straight to this server, or one the tier passes without
    caching: pages, forms, beacons): this server's own reading of the
    Cookie headers, by the same rule. Raises ``MalformedGateCookie``.
    """
    keyed = tier_value(connection)
    if keyed is not None:
        return keyed
    return read_gate_cookie(join_cookie_headers(connection.headers.getlist("cookie")), event_id)
