"""Call me's toll-fraud guard (``bridge.callme``), with a clock the test sets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.bridge.callme import (
    Allowed,
    CallMeGuard,
    CallMeRules,
    Reason,
    Refused,
    check_number,
    country_codes,
)

US_DIAL_IN = ("+19135550123",)
JANE = "+19135550100"  # a US fixed line or mobile (NANP numbers cannot tell)


def refused(decision: Allowed | Refused) -> Refused:
    assert isinstance(decision, Refused), decision
    return decision


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+19002530000", Reason.NUMBER_TYPE),  # US premium rate (900)
        ("+18002530000", Reason.NUMBER_TYPE),  # toll-free
        ("+448712345678", Reason.COUNTRY),  # UK, another country
        ("+1911", Reason.BAD_NUMBER),  # short
        ("911", Reason.BAD_NUMBER),  # no country code
        ("+1 (913) abc", Reason.BAD_NUMBER),
        ("", Reason.BAD_NUMBER),
    ],
)
def test_numbers_a_person_does_not_answer_are_refused_naming_the_field(
    number: str, reason: Reason
) -> None:
    decision = refused(check_number(number, (1,)))
    assert decision.reason is reason
    assert decision.status == 422 and decision.field == "number"


def test_premium_rate_is_refused_even_in_an_allowed_country() -> None:
    decision = refused(check_number("+448712345678", (44,)))
    assert decision.reason is Reason.NUMBER_TYPE and "premium-rate" in decision.message


def test_a_fixed_line_or_mobile_is_given_back_in_e164() -> None:
    assert check_number("+1 (913) 555-0100", (1,)) == Allowed(JANE)
    assert check_number("+44 20 7946 0000", (1, 44)) == Allowed("+442079460000")


def test_countries_default_to_the_events_dial_in_numbers() -> None:
    assert country_codes(["+19135550123", "+442079460000", "not a number"]) == (1, 44)
    guard = CallMeGuard()
    assert guard.request(1, 7, "+442079460000", US_DIAL_IN, 0.0) == Refused(
        Reason.COUNTRY, "calls to +44 are not offered for this event (only +1)"
    )
    configured = CallMeGuard(CallMeRules(countries=(44,)))
    assert configured.request(1, 7, "+442079460000", US_DIAL_IN, 0.0) == Allowed("+442079460000")
    assert refused(configured.request(1, 8, JANE, US_DIAL_IN, 0.0)).reason is Reason.COUNTRY


def test_one_pending_call_per_registrant_until_it_settles() -> None:
    guard = CallMeGuard()
    assert guard.request(1, 7, JANE, US_DIAL_IN, 0.0) == Allowed(JANE)
    # Not placed yet (the dial is on its way): still pending.
    assert refused(guard.request(1, 7, JANE, US_DIAL_IN, 1.0)).reason is Reason.PENDING
    guard.placed(1, 7, "out-1")
    guard.settled("out-1", "ringing")
    again = refused(guard.request(1, 7, JANE, US_DIAL_IN, 2.0))
    assert again.reason is Reason.PENDING and again.status == 429 and again.retry_after
    # Another registrant is not held up by her call.
    assert guard.request(1, 8, JANE, US_DIAL_IN, 2.0) == Allowed(JANE)
    guard.settled("out-1", "answered")  # on the call: still her one line
    assert refused(guard.request(1, 7, JANE, US_DIAL_IN, 2.5)).reason is Reason.PENDING
    guard.settled("out-1", "failed: 486 Busy Here")
    assert guard.request(1, 7, JANE, US_DIAL_IN, 3.0) == Allowed(JANE)
    assert guard.owner("out-1") == (1, 7) and guard.owner("out-2") is None


def test_a_call_that_could_not_be_placed_is_not_pending() -> None:
    guard = CallMeGuard()
    assert isinstance(guard.request(1, 7, JANE, US_DIAL_IN, 0.0), Allowed)
    guard.given_back(1, 7)
    assert isinstance(guard.request(1, 7, JANE, US_DIAL_IN, 1.0), Allowed)


def test_n_calls_per_registrant_per_event() -> None:
    guard = CallMeGuard(CallMeRules(per_registrant=3))
    for n in range(3):
        assert isinstance(guard.request(1, 7, JANE, US_DIAL_IN, 100.0 * n), Allowed)
        guard.placed(1, 7, f"out-{n}")
        guard.settled(f"out-{n}", "ended")
    limit = refused(guard.request(1, 7, JANE, US_DIAL_IN, 1000.0))
    assert limit.reason is Reason.REGISTRANT_LIMIT and limit.status == 429
    # Another event of hers is counted apart.
    assert isinstance(guard.request(2, 7, JANE, US_DIAL_IN, 1000.0), Allowed)


def test_per_event_per_minute_then_the_window_moves_on() -> None:
    guard = CallMeGuard(CallMeRules(per_event_minute=3, global_minute=100, per_address_minute=99))
    for registrant in range(3):
        assert isinstance(
            guard.request(1, registrant, JANE, US_DIAL_IN, 10.0 + registrant), Allowed
        )
    limit = refused(guard.request(1, 99, JANE, US_DIAL_IN, 30.0))
    # The first call (at 10 s) leaves the minute at 70 s: 40 s from now.
    assert limit.reason is Reason.EVENT_RATE and limit.retry_after == 40
    assert isinstance(guard.request(2, 99, JANE, US_DIAL_IN, 30.0), Allowed)  # another event
    assert isinstance(guard.request(1, 99, JANE, US_DIAL_IN, 70.0), Allowed)


def test_per_address_per_minute_whoever_registered() -> None:
    guard = CallMeGuard(CallMeRules(per_address_minute=2))
    for registrant in range(2):
        assert isinstance(guard.request(1, registrant, JANE, US_DIAL_IN, 0.0, "10.0.0.9"), Allowed)
    limit = refused(guard.request(1, 5, JANE, US_DIAL_IN, 1.0, "10.0.0.9"))
    assert limit.reason is Reason.ADDRESS_RATE and limit.retry_after == 59
    assert isinstance(guard.request(1, 5, JANE, US_DIAL_IN, 1.0, "10.0.0.10"), Allowed)
    assert isinstance(guard.request(1, 6, JANE, US_DIAL_IN, 60.0, "10.0.0.9"), Allowed)


def test_a_global_cap_over_every_event() -> None:
    guard = CallMeGuard(CallMeRules(per_event_minute=100, global_minute=4, per_address_minute=99))
    for event in range(4):
        assert isinstance(guard.request(event, 1, JANE, US_DIAL_IN, 0.5), Allowed)
    limit = refused(guard.request(9, 1, JANE, US_DIAL_IN, 59.0))
    assert limit.reason is Reason.GLOBAL_RATE and limit.retry_after == 2  # 1.5 s, rounded up
    assert isinstance(guard.request(9, 1, JANE, US_DIAL_IN, 60.5), Allowed)


def test_a_refused_request_counts_against_nothing() -> None:
    guard = CallMeGuard(CallMeRules(per_event_minute=1))
    for _ in range(5):
        refused(guard.request(1, 7, "+19002530000", US_DIAL_IN, 0.0))
    assert isinstance(guard.request(1, 7, JANE, US_DIAL_IN, 0.0), Allowed)


def test_the_operators_switch() -> None:
    guard = CallMeGuard()
    guard.switch(1, False)
    off = refused(guard.request(1, 7, JANE, US_DIAL_IN, 0.0))
    assert off.reason is Reason.OFF and off.status == 409 and off.field is None
    assert isinstance(guard.request(2, 7, JANE, US_DIAL_IN, 0.0), Allowed)
    guard.switch(1, True)
    assert guard.enabled(1)
    assert isinstance(guard.request(1, 7, JANE, US_DIAL_IN, 0.0), Allowed)


@given(st.text(max_size=40))
def test_any_text_is_allowed_in_e164_or_refused_never_raises(text: str) -> None:
    decision = check_number(text, (1, 44))
    if isinstance(decision, Allowed):
        assert decision.number.startswith(("+1", "+44"))
    else:
        assert decision.status == 422
