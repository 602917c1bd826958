"""The accent colour: the form's rule, the contrast it must carry, the darker shade offered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.brand.colour import (
    DEFAULT_ACCENT,
    MIN_CONTRAST,
    check_accent,
    contrast_with_white,
    darker,
    stylesheet,
)


def test_wcag_ratios_of_known_colours() -> None:
    assert contrast_with_white("#000000") == pytest.approx(21.0)
    assert contrast_with_white("#ffffff") == pytest.approx(1.0)
    # The WCAG reference: #767676 is the lightest grey that passes AA on white.
    assert contrast_with_white("#767676") == pytest.approx(4.54, abs=0.01)
    assert contrast_with_white("#777777") < MIN_CONTRAST


def test_a_dark_colour_is_kept_in_lower_case() -> None:
    assert check_accent(" #1F3A5F ") == "#1f3a5f"
    assert contrast_with_white(DEFAULT_ACCENT) >= MIN_CONTRAST


@pytest.mark.parametrize("value", ["1f3a5f", "#1f3a5", "#1f3a5fff", "navy", "#12345g", ""])
def test_anything_but_rrggbb_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="#rrggbb"):
        check_accent(value)


def test_a_light_colour_is_refused_naming_a_shade_that_passes() -> None:
    with pytest.raises(ValueError) as refused:
        check_accent("#66aaff")
    message = str(refused.value)
    assert "too light for white text" in message and "not saved" in message
    shade = darker("#66aaff")
    assert shade in message
    assert contrast_with_white(shade) >= MIN_CONTRAST
    assert check_accent(shade) == shade


@given(st.from_regex(r"\A#[0-9a-f]{6}\Z"))
def test_the_darker_shade_always_passes(colour: str) -> None:
    assert contrast_with_white(darker(colour)) >= MIN_CONTRAST


def test_the_stylesheet_sets_the_accent_and_never_writes_a_bad_value() -> None:
    assert "--accent: #1f3a5f;" in stylesheet("#1f3a5f")
    assert DEFAULT_ACCENT in stylesheet(None)
    assert "}" not in stylesheet("red;} body{display:none").split(":root {")[1][:-2]
    assert DEFAULT_ACCENT in stylesheet("red;} body{display:none")
