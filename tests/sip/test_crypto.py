"""The SDES ``a=crypto`` attribute (RFC 4568): what we take, what we skip, and no surprises."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.sip.crypto import (
    SUITES,
    CryptoAttribute,
    CryptoError,
    answer_for,
    choose,
    fresh,
    parse_crypto,
)

KEY = bytes(range(30))
INLINE = base64.b64encode(KEY).decode()


def test_a_plain_attribute_is_read() -> None:
    crypto = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}")
    assert crypto == CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", KEY)


def test_a_lifetime_is_allowed() -> None:
    assert parse_crypto(f"2 AES_CM_128_HMAC_SHA1_32 inline:{INLINE}|2^31").key == KEY


@pytest.mark.parametrize(
    "value",
    [
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}|2^20|1:4",  # an MKI
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE} UNENCRYPTED_SRTP",  # session parameters
        f"1 AEAD_AES_256_GCM inline:{INLINE}",  # a suite we do not speak
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",  # a key too short
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
        f"x AES_CM_128_HMAC_SHA1_80 inline:{INLINE}",
        f"1 AES_CM_128_HMAC_SHA1_80 uri:{INLINE}",
        "1 AES_CM_128_HMAC_SHA1_80",
    ],
)
def test_what_we_cannot_use_is_refused(value: str) -> None:
    with pytest.raises(CryptoError):
        parse_crypto(value)


def test_the_stronger_usable_suite_is_chosen_and_answered_under_its_tag() -> None:
    offered = choose(
        [
            "1 AEAD_AES_256_GCM inline:xyz",
            f"2 AES_CM_128_HMAC_SHA1_32 inline:{INLINE}",
            f"3 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}",
        ]
    )
    assert offered is not None and (offered.tag, offered.suite) == (3, "AES_CM_128_HMAC_SHA1_80")
    mine = answer_for(offered)
    assert (mine.tag, mine.suite) == (3, offered.suite) and mine.key != offered.key
    assert choose(["1 AEAD_AES_256_GCM inline:xyz"]) is None


@given(
    st.integers(0, 999_999_999),
    st.sampled_from(sorted(SUITES)),
    st.binary(min_size=30, max_size=30),
)
def test_what_we_write_reads_back(tag: int, suite: str, key: bytes) -> None:
    crypto = CryptoAttribute(tag, suite, key)
    assert parse_crypto(crypto.format()) == crypto


@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_with_crypto_error(value: str) -> None:
    try:
        crypto = parse_crypto(value)
    except CryptoError:
        return
    assert crypto.suite in SUITES and len(crypto.key) == SUITES[crypto.suite]


def test_fresh_keys_differ() -> None:
    assert fresh().key != fresh().key
