"""The event schema's one-line fields and calendar bounds, with the messages the CLI prints."""

from __future__ import annotations

import copy
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from callbridge.events.errors import describe
from callbridge.events.schema import LAST_YEAR, EventFile
from tests.conftest import example_data

BASE: dict[str, Any] = example_data()


def _with(section: str, key: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data[section][key] = value
    return data


def _problem(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        EventFile.model_validate(data)
    return describe(caught.value.errors())


_CONTROLS = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cc", "Zl", "Zp")]


@given(
    before=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20),
    control=st.sampled_from(_CONTROLS),
    after=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20),
    field=st.sampled_from(
        [("event", "title"), ("event", "period"), ("company", "name"), ("company", "city")]
    ),
)
def test_any_control_character_inside_a_one_line_field_names_the_field(
    before: str, control: str, after: str, field: tuple[str, str]
) -> None:
    message = _problem(_with(*field, before + control + after))
    assert message.startswith(f"{'.'.join(field)}: must be one line"), message


def test_a_multi_line_about_is_still_allowed() -> None:
    text = "First paragraph.\n\nSecond paragraph."
    assert EventFile.model_validate(_with("company", "about", text)).company.about == text


def test_outer_whitespace_is_trimmed_not_refused() -> None:
    spec = EventFile.model_validate(_with("event", "title", "  Q3 results\r\n"))
    assert spec.event.title == "Q3 results"


@pytest.mark.parametrize("year", [1969, LAST_YEAR + 1, 9999])
def test_a_start_outside_the_calendar_is_a_field_error_not_an_overflow(year: int) -> None:
    start = BASE["event"]["starts_at"].replace(year=year)
    message = _problem(_with("event", "starts_at", start))
    assert message == "event.starts_at: must fall between the years 1970 and 2999"


def test_the_last_year_still_computes_its_replay_window() -> None:
    data = _with("event", "starts_at", BASE["event"]["starts_at"].replace(year=LAST_YEAR, month=12))
    data["event"]["replay_until"] = BASE["event"]["replay_until"].replace(
        year=LAST_YEAR, month=12, day=31
    )
    data["event"]["announced_on"] = None
    event = EventFile.model_validate(data).event
    assert event.start_utc().year == LAST_YEAR
