"""Telephone numbers as a release prints them and as a SIP trunk dials them.

Numbers are stored in E.164 (``+19133120379``): that is what a carrier puts in
the request URI, so the dial-in lookup compares like with like. They are
printed in the national style of their own country ("913-312-0379" for a U.S.
number, as the seed release does) and in international style for everyone
else.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

# A release written for a U.S. audience prints U.S. numbers nationally.
HOME_REGION = "US"


class InvalidPhoneNumber(ValueError):
    """The text is not a dialable telephone number."""


def to_e164(text: str, default_region: str = HOME_REGION) -> str:
    """Parse a number as people write it and return it in E.164.

    Raises InvalidPhoneNumber with the reason when it cannot be a real number.
    """
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number")
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def display(e164: str, reader_region: str = HOME_REGION) -> str:
    """Format a stored E.164 number for a reader in ``reader_region``.

    U.S. and Canadian numbers print as ``913-312-0379`` (the style of U.S.
    wire releases); numbers of other countries print internationally, so a
    reader abroad can dial them as written.
    """
    number = phonenumbers.parse(e164, None)
    region = phonenumbers.region_code_for_number(number)
    if number.country_code == 1 and reader_region in ("US", "CA"):
        national = str(phonenumbers.national_significant_number(number))
        return f"{national[0:3]}-{national[3:6]}-{national[6:]}"
    if region == reader_region:
        return str(phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL))
    return str(phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL))


# A dial-in whose label says it is for callers abroad ("International", "Intl.",
# "Outside the U.S.", "Global"): they dial it from another country.
_ABROAD = re.compile(r"\b(international|intl|outside|abroad|overseas|global|worldwide)\b", re.I)


def dial_in_display(e164: str, label: str, home: str = HOME_REGION) -> str:
    """A dial-in number as the release and the event page print it.

    In international form ("+1 913-555-0123") when the number is outside
    the country the release is written for (``home``, as ``display``) or its
    label says it is for callers abroad: they must dial the country code.
    Otherwise as ``display`` prints it for a reader at home ("866-555-0199").
    """
    if _ABROAD.search(label):
        number = phonenumbers.parse(e164, None)
        return str(phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL))
    return display(e164, home)


def normalise_dialled(user_part: str, default_region: str = HOME_REGION) -> str | None:
    """Turn a SIP request URI's user part into E.164, or None if it is not a number.

    Trunks send the dialled number in many shapes (``+19133120379``,
    ``19133120379``, ``9133120379``, with visual separators); all of them
    must find the same event.
    """
    digits = "".join(ch for ch in user_part if ch.isdigit() or ch == "+")
    if not digits:
        return None
    candidates = [digits]
    if not digits.startswith("+"):
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            return to_e164(candidate, default_region)
        except InvalidPhoneNumber:
            continue
    return None
