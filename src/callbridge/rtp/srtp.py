"""SRTP for one leg (RFC 3711), with the keys SDES settled (``sip.sdp.SrtpKeys`` has them).

A thin wrapper on libsrtp (``pylibsrtp``): an outbound session under our key
and an inbound one under the peer's. ``unprotect`` returns None for a packet
that fails authentication or replay checks (a wrong key, a forgery, a
replay) and counts it; nothing of it may reach the jitter buffer, the
keypad or the mix.
"""

from __future__ import annotations

import pylibsrtp

PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


class SrtpContext:
    """Protects what a leg sends, authenticates and decrypts what it receives."""

    def __init__(self, suite: str, local: bytes, remote: bytes) -> None:
        """``local`` protects what we send, ``remote`` (the peer's) what we receive."""
        self.keys = (suite, local, remote)
        profile = PROFILES[suite]
        self._out = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=local, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
            )
        )
        self._in = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=remote, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
            )
        )
        self.protected = 0
        self.unprotected = 0
        self.failed = 0  # failed authentication or replay: dropped

    def protect(self, packet: bytes) -> bytes:
        self.protected += 1
        return self._out.protect(packet)

    def unprotect(self, packet: bytes) -> bytes | None:
        try:
            plain = self._in.unprotect(packet)
        except pylibsrtp.Error:
            self.failed += 1
            return None
        self.unprotected += 1
        return plain

    def protect_rtcp(self, packet: bytes) -> bytes:
        """SRTCP (RFC 3711 section 3.4): our reports encrypted and authenticated too."""
        return self._out.protect_rtcp(packet)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        try:
            return self._in.unprotect_rtcp(packet)
        except pylibsrtp.Error:
            self.failed += 1
            return None
