"""Digest authentication: RFC 7616's worked example, the challenge parser fuzzed."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.sip.digest import Challenge, DigestError, answer, choose, parse_challenge

# RFC 7616 section 3.9.1.
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def _rfc(algorithm: str) -> str:
    return (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_vectors(algorithm: str, expected: str) -> None:
    challenge = parse_challenge(_rfc(algorithm))
    assert challenge.qop == ("auth", "auth-int")
    got = answer(challenge, "Mufasa", "Circle of Life", "GET", "/dir/index.html", cnonce=RFC_CNONCE)
    assert got.response == expected
    assert f'response="{expected}"' in got.header
    assert "nc=00000001" in got.header and "qop=auth" in got.header
    assert f'opaque="{RFC_OPAQUE}"' in got.header
    assert "Circle of Life" not in got.header


def test_sha256_is_preferred_whatever_the_order() -> None:
    chosen = choose([_rfc("MD5"), _rfc("SHA-256")])
    assert chosen.algorithm == "SHA-256"
    assert choose([_rfc("MD5")]).algorithm == "MD5"
    assert choose(['Basic realm="x"', _rfc("MD5")]).algorithm == "MD5"


def test_rfc2069_form_without_qop() -> None:
    # RFC 2617 section 3.5's example, without qop: H(HA1:nonce:HA2).
    challenge = parse_challenge('Digest realm="r", nonce="n"')
    got = answer(challenge, "u", "p", "REGISTER", "sip:example.com")
    assert "qop" not in got.header and "cnonce" not in got.header
    assert challenge.algorithm == "MD5" and not challenge.stale


def test_quoted_pairs_and_case() -> None:
    challenge = parse_challenge('DIGEST Realm="a\\"b", NONCE=abc, stale=TRUE, algorithm=md5-sess')
    assert challenge == Challenge('a"b', "abc", "MD5-SESS", (), None, True)
    got = answer(challenge, 'x"y', "p", "INVITE", "sip:1@h", cnonce="c")
    assert 'username="x\\"y"' in got.header and 'realm="a\\"b"' in got.header


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "Basic realm=x",
        'Digest realm="r"',
        'Digest nonce="n"',
        'Digest realm="r", realm="s", nonce="n"',
        'Digest realm="r" nonce="n"',
        'Digest realm="unterminated, nonce="n"',
        "Digest " + ", ".join(f"p{i}=1" for i in range(40)) + ", realm=r, nonce=n",
    ],
)
def test_bad_challenges_say_why(bad: str) -> None:
    with pytest.raises(DigestError):
        parse_challenge(bad)


def test_nothing_answerable() -> None:
    with pytest.raises(DigestError, match="offered: SHA-1"):
        choose(['Digest realm="r", nonce="n", algorithm=SHA-1'])
    with pytest.raises(DigestError):
        choose(['Digest realm="r", nonce="n", qop="auth-int"'])


@given(st.text(max_size=300))
def test_parser_fuzz_returns_or_raises_its_own_error(text: str) -> None:
    try:
        challenge = parse_challenge(text)
    except DigestError:
        return
    assert isinstance(challenge, Challenge)


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=1, max_size=12)
_qtext = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@given(_qtext, _qtext, st.dictionaries(_token, _qtext, max_size=5))
def test_parser_reads_back_what_is_quoted(realm: str, nonce: str, extra: dict[str, str]) -> None:
    def q(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    params = {
        k: v
        for k, v in extra.items()
        if k not in ("realm", "nonce", "qop", "stale", "algorithm", "opaque")
    }
    text = "Digest " + ", ".join(
        [f"realm={q(realm)}", f"nonce={q(nonce)}", *(f"{k}={q(v)}" for k, v in params.items())]
    )
    challenge = parse_challenge(text)
    assert (challenge.realm, challenge.nonce) == (realm, nonce)
    # And byte by byte: every prefix either parses or raises DigestError.
    for end in range(0, len(text), 7):
        with contextlib.suppress(DigestError):
            parse_challenge(text[:end])
