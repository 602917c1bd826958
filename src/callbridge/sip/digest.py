"""HTTP Digest access authentication for SIP (RFC 7616, RFC 8760; RFC 3261 section 22).

A carrier that authenticates by credentials answers our INVITE or REGISTER
with 401 (``WWW-Authenticate``) or 407 (``Proxy-Authenticate``); the request
is sent again with ``Authorization`` or ``Proxy-Authorization``. This module
reads the challenges, picks one (SHA-256 when offered, then SHA-512-256,
then MD5, as RFC 8760 lets a UAC prefer the stronger), and computes the
answer with ``qop=auth`` and a fresh ``cnonce`` (or the RFC 2069 form when
the server offers no qop). ``auth-int`` and ``userhash`` are not offered by
the carriers this is for, and are refused rather than answered wrongly.

Pure: no I/O, no clock; the cnonce is a parameter (``secrets`` by default).
The password is read only to hash it; nothing here logs or formats it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

# A challenge header longer than this is refused (every buffer has a limit).
MAX_CHALLENGE = 4096
MAX_PARAMS = 32

# RFC 7235 section 2.1 and RFC 7230 section 3.2.6:
#   token          = 1*tchar
#   tchar          = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#                    "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
#   quoted-string  = DQUOTE *( qdtext / quoted-pair ) DQUOTE
#   qdtext         = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
#   quoted-pair    = "\" ( HTAB / SP / VCHAR / obs-text )
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
#   auth-param     = token BWS "=" BWS ( token / quoted-string )
_PARAM_RE = re.compile(rf"[ \t]*({_TOKEN})[ \t]*=[ \t]*({_TOKEN}|{_QUOTED})[ \t]*")
#   challenge      = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
_SCHEME_RE = re.compile(rf"[ \t]*({_TOKEN})(?:[ \t]+|$)")
_UNQUOTE_RE = re.compile(r"\\(.)", re.DOTALL)

# RFC 7616 section 3.3 and RFC 8760 section 2: the algorithms and their hashes.
_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
# Stronger first: a server offering several challenges gets the first we know here.
PREFERENCE = ("SHA-256", "SHA-512-256", "MD5")


class DigestError(ValueError):
    """A challenge that cannot be read or answered; the message says why."""


@dataclass(frozen=True)
class Challenge:
    """One ``Digest`` challenge as the server sent it."""

    realm: str
    nonce: str
    algorithm: str = "MD5"  # upper case; "-sess" kept
    qop: tuple[str, ...] = ()  # as offered, lower case
    opaque: str | None = None
    stale: bool = False

    @property
    def base_algorithm(self) -> str:
        return self.algorithm.removesuffix("-SESS")

    @property
    def supported(self) -> bool:
        """Can we answer it (a known algorithm; ``auth`` offered, or no qop at all)?"""
        return (
            self.base_algorithm in _HASHES
            and _usable(self.base_algorithm)
            and (not self.qop or "auth" in self.qop)
        )


def _usable(algorithm: str) -> bool:
    try:
        hashlib.new(_HASHES[algorithm])
    except (ValueError, KeyError):
        return False
    return True


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return _UNQUOTE_RE.sub(r"\1", value[1:-1])
    return value


def parse_challenge(text: str) -> Challenge:
    """One ``WWW-Authenticate``/``Proxy-Authenticate`` value; raises ``DigestError``.

    Parameter names are case-insensitive; unknown ones are skipped (RFC 7616
    section 3.3); a repeated one, or a missing realm or nonce, is an error.
    """
    if len(text) > MAX_CHALLENGE:
        raise DigestError(f"challenge over {MAX_CHALLENGE} characters")
    scheme = _SCHEME_RE.match(text)
    if scheme is None:
        raise DigestError("challenge without an auth-scheme")
    if scheme[1].lower() != "digest":
        raise DigestError(f"auth-scheme {scheme[1][:20]!r} is not Digest")
    params: dict[str, str] = {}
    position = scheme.end()
    while position < len(text):
        match = _PARAM_RE.match(text, position)
        if match is None:
            raise DigestError(f"malformed auth-param at character {position}")
        name = match[1].lower()
        if name in params:
            raise DigestError(f"auth-param {name!r} given twice")
        params[name] = _unquote(match[2])
        if len(params) > MAX_PARAMS:
            raise DigestError(f"more than {MAX_PARAMS} auth-params")
        position = match.end()
        if position < len(text):
            if text[position] != ",":
                raise DigestError(f"expected ',' at character {position}")
            position += 1
    if "realm" not in params:
        raise DigestError("challenge without a realm")
    if "nonce" not in params:
        raise DigestError("challenge without a nonce")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


def choose(values: list[str]) -> Challenge:
    """The challenge to answer among a response's headers: the strongest we support.

    Unreadable challenges are passed over (a server may add schemes we do not
    speak); ``DigestError`` if none is left.
    """
    readable: list[Challenge] = []
    errors: list[str] = []
    for value in values:
        try:
            readable.append(parse_challenge(value))
        except DigestError as error:
            errors.append(str(error))
    usable = [c for c in readable if c.supported]
    for algorithm in PREFERENCE:
        for challenge in usable:
            if challenge.base_algorithm == algorithm:
                return challenge
    if readable:
        offered = ", ".join(sorted({c.algorithm for c in readable}))
        raise DigestError(f"no challenge we can answer (offered: {offered})")
    raise DigestError("; ".join(errors) or "no challenge")


def _h(algorithm: str, data: str) -> str:
    return hashlib.new(_HASHES[algorithm], data.encode("utf-8")).hexdigest()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Answer:
    """The computed answer: ``header`` is the Authorization value to send."""

    response: str
    header: str


def answer(
    challenge: Challenge,
    username: str,
    password: str,
    method: str,
    uri: str,
    *,
    nc: int = 1,
    cnonce: str | None = None,
) -> Answer:
    """RFC 7616 section 3.4.1: the response to ``challenge`` for ``method uri``.

    ``nc`` counts the requests made with this nonce (the first is 1).
    """
    if not challenge.supported:
        raise DigestError(f"cannot answer a {challenge.algorithm} challenge (qop {challenge.qop})")
    algorithm = challenge.base_algorithm
    cnonce = cnonce if cnonce is not None else secrets.token_hex(16)
    ha1 = _h(algorithm, f"{username}:{challenge.realm}:{password}")
    if challenge.algorithm.endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    nc_text = f"{nc:08x}"
    if challenge.qop:
        response = _h(algorithm, f"{ha1}:{challenge.nonce}:{nc_text}:{cnonce}:auth:{ha2}")
    else:
        response = _h(algorithm, f"{ha1}:{challenge.nonce}:{ha2}")
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if challenge.qop:
        parts += ["qop=auth", f"nc={nc_text}", f"cnonce={_quote(cnonce)}"]
    return Answer(response, "Digest " + ", ".join(parts))
