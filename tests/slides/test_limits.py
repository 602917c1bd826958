"""The page limits, from page sizes alone: what a slide may be, and what each refusal says."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.slides.limits import (
    DEFAULT_LIMITS,
    DeckError,
    PageLimits,
    check_page,
    check_pages,
    rendered_size,
)

A4 = (595.28, 841.89)


@pytest.mark.parametrize(
    ("size", "rendered"),
    [
        ((960, 540), (1280, 720)),  # PowerPoint 16:9
        ((720, 540), (1280, 960)),  # 4:3
        ((720, 405), (1280, 720)),  # Google Slides
        ((1920, 1080), (1280, 720)),  # Keynote, at 1 pt a pixel
        ((364.19, 273.14), (1280, 960)),  # beamer
        (A4, (1280, 1811)),  # a handout
        ((1224, 792), (1280, 829)),  # tabloid, landscape
        ((1000, 3000), (1280, 3840)),  # portrait 1:3, the tallest a slide may be
        ((3600, 900), (1280, 320)),  # 4:1, the widest
    ],
)
def test_the_slides_people_make_pass(size: tuple[float, float], rendered: tuple[int, int]) -> None:
    assert check_page(1, *size, DEFAULT_LIMITS) == rendered


@pytest.mark.parametrize(
    ("size", "refusal"),
    [
        ((1, 14400), "page 3 is 1 × 14,400 pt; a slide may be at most 3,600 pt (50 in) on a side"),
        ((100, 14400), "page 3 is 100 × 14,400 pt; a slide may be at most 3,600 pt (50 in) on a"),
        ((14400, 14400), "page 3 is 14,400 × 14,400 pt; a slide may be at most 3,600 pt"),
        ((50, 40), "page 3 is 50 × 40 pt; a slide's sides must be at least 72 pt (1 in)"),
        ((0, 540), "page 3 is 0 × 540 pt; a slide's sides must be at least 72 pt"),
        ((3600, 720), "page 3 is 3,600 × 720 pt, 5.0:1; a slide's long side may be at most 4"),
        ((200, 1000), "page 3 is 200 × 1,000 pt, 5.0:1; a slide's long side may be at most 4"),
        (
            (800, 3000),
            "page 3 is 800 × 3,000 pt and would be 1,280 × 4,800 px; a slide may be at most "
            "3,840 px tall and 4.9 million pixels",
        ),
        ((math.nan, 540), "page 3 has no usable size"),
        ((960, math.inf), "page 3 has no usable size"),
    ],
)
def test_a_page_out_of_bounds_is_refused_naming_the_page_and_the_limit(
    size: tuple[float, float], refusal: str
) -> None:
    with pytest.raises(DeckError) as refused:
        check_page(3, *size, DEFAULT_LIMITS)
    assert str(refused.value).startswith(refusal)


def test_the_first_page_out_of_bounds_is_the_one_named() -> None:
    with pytest.raises(DeckError, match=r"^page 2 is 100 × 14,400 pt"):
        check_pages([(960, 540), (100, 14400), (1, 14400)], DEFAULT_LIMITS)


def test_the_deck_is_held_to_a_total_of_pixels() -> None:
    # 150 portrait A4 pages (1280 × 1811 px each) fit; 150 of the tallest slides do not.
    assert len(check_pages([A4] * 150, DEFAULT_LIMITS)) == 150
    with pytest.raises(DeckError, match="the deck's 150 pages would be 737 million pixels; a deck "
                       "may be at most 400 million"):  # fmt: skip
        check_pages([(1000, 3000)] * 150, DEFAULT_LIMITS)


def test_no_pages_and_too_many_are_refused() -> None:
    with pytest.raises(DeckError, match="no pages"):
        check_pages([], DEFAULT_LIMITS)
    with pytest.raises(DeckError, match="151 pages; a deck may have at most 150"):
        check_pages([(960, 540)] * 151, DEFAULT_LIMITS)


sides = st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 20_000)


@given(st.lists(st.tuples(sides, sides), max_size=160), st.integers(100, 4000))
def test_every_answer_is_within_the_limits_or_a_refusal(
    sizes: list[tuple[float, float]], width: int
) -> None:
    limits = PageLimits(render_width=width, max_page_pixels=width * 3840)
    try:
        rendered = check_pages(sizes, limits)
    except DeckError as refusal:
        assert str(refusal)
        return
    assert len(rendered) == len(sizes) <= limits.max_pages
    for (w_pt, h_pt), (w_px, h_px) in zip(sizes, rendered, strict=True):
        assert limits.min_side_pt <= min(w_pt, h_pt) <= max(w_pt, h_pt) <= limits.max_side_pt
        assert (w_px, h_px) == rendered_size(w_pt, h_pt, width)
        assert w_px == width and 1 <= h_px <= limits.max_height_px
        assert w_px * h_px <= limits.max_page_pixels
    assert sum(w * h for w, h in rendered) <= limits.max_deck_pixels
