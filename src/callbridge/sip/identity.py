"""Who is calling, as far as a passcode guard may trust it.

The guessing guard (``ivr/guard.py``) counts wrong passcodes per caller. The
key it counts under must be one the caller cannot change at will and one
that does not lump many callers together:

- The From header's display name is typed by the caller: never used.
- The source address of a trusted trunk is the carrier's SBC, shared by
  every caller: never used for a trusted trunk (that would let one guesser
  lock out the whole trunk).
- What the trusted trunk asserts is used: the user part of the first
  P-Asserted-Identity URI (RFC 3325), else the user part of the From URI
  (which carriers set to the calling line's number).
- A source that is not an allow-listed trunk asserts nothing: its identity
  is its address.

Callers whose identity is withheld (no asserted identity and an anonymous
From, RFC 3323) share one key, ``anonymous``: a guesser who withholds their
number slows and refuses other withheld callers for a while, never callers
with a number.

Pure: a parsed request and a flag in, a ``CallerIdentity`` out.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from callbridge.sip.errors import SipError
from callbridge.sip.message import NameAddr, SipRequest, split_list

# A key is kept in memory per caller; a user part longer than this is cut.
MAX_KEY_USER = 64
# Visual separators of a telephone number (RFC 3966 section 5.1.1).
_PHONE_RE = re.compile(r"^\+?[0-9\-.()]+$")
_VISUAL = re.compile(r"[\-.()]")
_ANONYMOUS_USERS = frozenset({"", "anonymous", "unknown", "restricted", "unavailable"})


class IdentitySource(enum.Enum):
    """Where the key came from."""

    ASSERTED = "asserted"  # P-Asserted-Identity from a trusted trunk
    FROM_URI = "from"  # the From URI's user from a trusted trunk
    ANONYMOUS = "anonymous"  # a trusted trunk's caller who withheld their number
    ADDRESS = "address"  # a source that is not a trusted trunk


@dataclass(frozen=True)
class CallerIdentity:
    """The key a caller's failures are counted under, and where it came from."""

    key: str
    source: IdentitySource

    def __str__(self) -> str:
        return self.key


ANONYMOUS = CallerIdentity("anonymous", IdentitySource.ANONYMOUS)


def _user_of(text: str) -> str | None:
    """The normalised user part of a name-addr or addr-spec, or None if unusable."""
    try:
        uri = NameAddr.parse(text).uri
    except SipError:
        return None
    if uri.host.lower() == "anonymous.invalid":
        return None
    user = (uri.user or "").strip().lower()
    # ";user=phone" style parameters inside the user part are not part of the number.
    user = user.split(";", 1)[0]
    if _PHONE_RE.match(user):
        user = _VISUAL.sub("", user)
    if user in _ANONYMOUS_USERS:
        return None
    return user[:MAX_KEY_USER]


def caller_identity(request: SipRequest, source_ip: str, trusted: bool) -> CallerIdentity:
    """The identity of the INVITE ``request`` that came from ``source_ip``.

    Call once per INVITE; ``trusted`` says whether ``source_ip`` is an
    allow-listed trunk. The display name never counts.
    """
    if not trusted:
        return CallerIdentity(f"address:{source_ip}", IdentitySource.ADDRESS)
    for header in request.headers.get_all("P-Asserted-Identity"):
        for value in split_list(header):
            user = _user_of(value)
            if user is not None:
                return CallerIdentity(f"user:{user}", IdentitySource.ASSERTED)
    user = _user_of(request.headers.get("From") or "")
    if user is not None:
        return CallerIdentity(f"user:{user}", IdentitySource.FROM_URI)
    return ANONYMOUS
