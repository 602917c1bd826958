"""SDES keys for SRTP (RFC 4568): the SDP ``a=crypto`` attribute, read and written.

Sans-IO: text in, values out. One attribute is
``a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]`` where a
key parameter is ``inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>]``.

We take the AES counter-mode suites with HMAC-SHA1 (``AES_CM_128_HMAC_SHA1_80``
and ``_32``, the ones every SDES peer speaks), one key per attribute, no MKI
(an MKI means several keys in turn, which a single-key session cannot follow)
and no session parameters (each changes what is protected, RFC 4568 section
6.3: an attribute with one we do not know is unusable, not to be half-used).
An unusable attribute is skipped, as the offer/answer rules ask: the offer
fails only when none is left (``choose``).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

# The suites we speak, with their master key + salt length (bytes).
SUITES = {"AES_CM_128_HMAC_SHA1_80": 30, "AES_CM_128_HMAC_SHA1_32": 30}
# The suite we prefer when an offer lists several we speak (the stronger tag).
PREFERRED = "AES_CM_128_HMAC_SHA1_80"

_TAG_RE = re.compile(r"[0-9]{1,9}\Z")
_LIFETIME_RE = re.compile(r"(?:2\^[0-9]{1,2}|[0-9]{1,20})\Z")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}\Z")


class CryptoError(ValueError):
    """An ``a=crypto`` value we cannot use (the message says why)."""


@dataclass(frozen=True)
class CryptoAttribute:
    """One usable ``a=crypto`` line: its tag, suite and master key + salt."""

    tag: int
    suite: str
    key: bytes

    def format(self) -> str:
        """The attribute's value, as it follows ``a=crypto:``."""
        inline = base64.b64encode(self.key).decode("ascii")
        return f"{self.tag} {self.suite} inline:{inline}"


def parse_crypto(value: str) -> CryptoAttribute:
    """Read the value of one ``a=crypto:`` attribute; ``CryptoError`` if we cannot use it."""
    parts = value.split()
    if len(parts) < 3:
        raise CryptoError("a=crypto needs a tag, a suite and a key")
    tag, suite, key_params = parts[0], parts[1], parts[2]
    if not _TAG_RE.match(tag):
        raise CryptoError(f"a=crypto tag {tag[:12]!r} is not a number")
    if len(parts) > 3:
        raise CryptoError("a=crypto with session parameters")
    if suite not in SUITES:
        raise CryptoError(f"crypto suite {suite[:40]!r} is not one we speak")
    if ";" in key_params:
        raise CryptoError("a=crypto with several keys")
    method, _, info = key_params.partition(":")
    if method != "inline":
        raise CryptoError(f"key method {method[:12]!r} is not inline")
    fields = info.split("|")
    if len(fields) > 3:
        raise CryptoError("a=crypto key with too many fields")
    encoded = fields[0]
    if not _BASE64_RE.match(encoded):
        raise CryptoError("a=crypto key is not base64")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("a=crypto key is not base64") from None
    if len(key) != SUITES[suite]:
        raise CryptoError(f"a=crypto key is {len(key)} bytes, not {SUITES[suite]}")
    for extra in fields[1:]:
        if ":" in extra:
            raise CryptoError("a=crypto key with an MKI")
        if not _LIFETIME_RE.match(extra):
            raise CryptoError(f"a=crypto key lifetime {extra[:12]!r} is malformed")
    return CryptoAttribute(int(tag), suite, key)


def choose(values: list[str]) -> CryptoAttribute | None:
    """The attribute to answer from an offer's ``a=crypto`` values (None: none usable)."""
    usable: list[CryptoAttribute] = []
    for value in values:
        try:
            usable.append(parse_crypto(value))
        except CryptoError:
            continue
    if not usable:
        return None
    preferred = [c for c in usable if c.suite == PREFERRED]
    return (preferred or usable)[0]


def answer_for(offered: CryptoAttribute, key: bytes | None = None) -> CryptoAttribute:
    """Our answer to ``offered``: its tag and suite, our own fresh key (RFC 4568 section 7.1.2)."""
    return CryptoAttribute(
        offered.tag, offered.suite, key if key is not None else secrets.token_bytes(30)
    )


def fresh(suite: str = PREFERRED, tag: int = 1) -> CryptoAttribute:
    """A new key of our own (for an offer)."""
    return CryptoAttribute(tag, suite, secrets.token_bytes(SUITES[suite]))
