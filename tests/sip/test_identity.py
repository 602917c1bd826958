from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callbridge.sip.identity import (
    ANONYMOUS,
    CallerIdentity,
    IdentitySource,
    caller_identity,
)
from callbridge.sip.message import SipRequest, parse_message


def invite(from_header: str, *extra: str) -> SipRequest:
    lines = [
        "INVITE sip:+19135550123@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1",
        f"From: {from_header};tag=1",
        "To: <sip:+19135550123@127.0.0.1>",
        "Call-ID: identity-1",
        "CSeq: 1 INVITE",
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, SipRequest)
    return message


def test_the_asserted_identity_wins_over_from() -> None:
    request = invite(
        '"Anyone" <sip:+12125550000@sbc>',
        'P-Asserted-Identity: "Real" <sip:+1-212-555-1234@carrier;user=phone>',
    )
    assert caller_identity(request, "10.0.0.1", trusted=True) == CallerIdentity(
        "user:+12125551234", IdentitySource.ASSERTED
    )


def test_a_tel_uri_and_a_list_of_identities() -> None:
    request = invite(
        "<sip:anonymous@anonymous.invalid>",
        "P-Asserted-Identity: <sip:anonymous@anonymous.invalid>, <tel:+12125551234>",
    )
    assert caller_identity(request, "10.0.0.1", True).key == "user:+12125551234"


def test_without_an_assertion_the_from_uri_user_counts_never_the_display_name() -> None:
    one = caller_identity(invite('"CEO" <sip:+12125551234@sbc>'), "10.0.0.1", True)
    two = caller_identity(invite('"Someone Else" <sip:+12125551234@sbc>'), "10.0.0.1", True)
    assert one == two == CallerIdentity("user:+12125551234", IdentitySource.FROM_URI)


def test_a_different_user_behind_the_same_trunk_is_a_different_identity() -> None:
    one = caller_identity(invite("<sip:alice@sbc>"), "10.0.0.1", True)
    two = caller_identity(invite("<sip:bob@sbc>"), "10.0.0.1", True)
    assert one != two
    assert "10.0.0.1" not in one.key


def test_withheld_numbers_share_the_anonymous_key() -> None:
    assert (
        caller_identity(invite('"Anonymous" <sip:anonymous@anonymous.invalid>'), "10.0.0.1", True)
        == ANONYMOUS
    )
    assert caller_identity(invite("<sip:restricted@sbc>"), "10.0.0.1", True) == ANONYMOUS


def test_an_untrusted_source_is_its_address() -> None:
    request = invite("<sip:alice@x>", "P-Asserted-Identity: <sip:+12125551234@x>")
    assert caller_identity(request, "192.0.2.9", trusted=False) == CallerIdentity(
        "address:192.0.2.9", IdentitySource.ADDRESS
    )


def test_a_malformed_assertion_falls_back_to_from() -> None:
    request = invite("<sip:alice@sbc>", "P-Asserted-Identity: <sip:unclosed@x")
    assert caller_identity(request, "10.0.0.1", True).key == "user:alice"


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
        max_size=200,
    )
)
def test_any_assertion_gives_a_bounded_key(value: str) -> None:
    request = invite("<sip:alice@sbc>", f"P-Asserted-Identity: {value.strip()}x")
    identity = caller_identity(request, "10.0.0.1", True)
    assert len(identity.key) <= len("user:") + 64
