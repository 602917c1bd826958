"""How big a deck's pages may be, decided from their sizes alone, before anything is rendered.

A PDF page can be any size up to 14,400 pt a side, and a deck is rendered
``render_width`` pixels wide whatever its page is: a 100 × 14,400 pt page
becomes a 1280 × 184,320 px image (700 MB as RGBA to render, about as much for
every listener's browser to decode). So each page is held to what a slide
can be before the renderer sees it:

- in points, every side between ``min_side_pt`` (an inch) and ``max_side_pt``
  (50 in, three times A3's long side: Keynote's 1920 × 1080 pt pages pass),
  and the long side at most ``max_aspect`` times the short one;
- in pixels, once scaled to ``render_width``: at most ``max_height_px`` tall
  and ``max_page_pixels`` in all, and the deck at most ``max_deck_pixels``
  (150 portrait A4 pages fit).

The sizes are PDFium's (``FPDF_GetPageSizeByIndexF``): the CropBox cut to the
MediaBox, turned by ``/Rotate`` — the very box the renderer draws. Pure: sizes
in, the rendered sizes out or a ``DeckError`` naming the page and the limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

RENDER_WIDTH = 1280  # pixels: sharp on a laptop, a few hundred KB a slide


class DeckError(ValueError):
    """A deck refused, with the reason for the operator."""


@dataclass(frozen=True)
class PageLimits:
    """What a deck's pages may be; the defaults are the web app's."""

    max_pages: int = 150
    render_width: int = RENDER_WIDTH
    min_side_pt: float = 72.0
    max_side_pt: float = 3600.0
    max_aspect: float = 4.0
    max_height_px: int = 3840  # three widths: a portrait page up to 1:3
    max_page_pixels: int = RENDER_WIDTH * 3840
    max_deck_pixels: int = 400_000_000


DEFAULT_LIMITS = PageLimits()


def _pt(value: float) -> str:
    return f"{value:,.0f}" if value == round(value) else f"{value:,.1f}"


def rendered_size(width_pt: float, height_pt: float, render_width: int) -> tuple[int, int]:
    """The image a page of this size becomes when scaled to ``render_width`` pixels wide."""
    return render_width, max(1, math.ceil(height_pt * render_width / width_pt))


def check_page(
    number: int, width_pt: float, height_pt: float, limits: PageLimits
) -> tuple[int, int]:
    """Page ``number`` (1-based)'s rendered size; raises ``DeckError`` naming the broken limit."""
    if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
        raise DeckError(f"page {number} has no usable size ({width_pt} × {height_pt} pt)")
    size = f"page {number} is {_pt(width_pt)} × {_pt(height_pt)} pt"
    short, long = sorted((width_pt, height_pt))
    if long > limits.max_side_pt:
        raise DeckError(
            f"{size}; a slide may be at most {_pt(limits.max_side_pt)} pt "
            f"({limits.max_side_pt / 72:.0f} in) on a side"
        )
    if short < limits.min_side_pt:
        raise DeckError(
            f"{size}; a slide's sides must be at least {_pt(limits.min_side_pt)} pt "
            f"({limits.min_side_pt / 72:g} in)"
        )
    if long > short * limits.max_aspect:
        raise DeckError(
            f"{size}, {long / short:.1f}:1; a slide's long side may be at most "
            f"{limits.max_aspect:g} times its short side"
        )
    width_px, height_px = rendered_size(width_pt, height_pt, limits.render_width)
    if height_px > limits.max_height_px or width_px * height_px > limits.max_page_pixels:
        raise DeckError(
            f"{size} and would be {width_px:,} × {height_px:,} px; a slide may be at most "
            f"{limits.max_height_px:,} px tall and {limits.max_page_pixels / 1e6:.1f} "
            f"million pixels ({width_px:,} px wide)"
        )
    return width_px, height_px


def check_count(pages: int, limits: PageLimits) -> None:
    """Refuse a deck of no pages or too many (before their sizes are read)."""
    if pages <= 0:
        raise DeckError("the PDF has no pages")
    if pages > limits.max_pages:
        raise DeckError(f"the PDF has {pages} pages; a deck may have at most {limits.max_pages}")


def check_pages(sizes: Sequence[tuple[float, float]], limits: PageLimits) -> list[tuple[int, int]]:
    """Every page's rendered size, in order; raises ``DeckError`` for no pages or too many,
    and at the first page (then the total) over a limit."""
    check_count(len(sizes), limits)
    rendered = [check_page(n, w, h, limits) for n, (w, h) in enumerate(sizes, 1)]
    total = sum(w * h for w, h in rendered)
    if total > limits.max_deck_pixels:
        raise DeckError(
            f"the deck's {len(sizes)} pages would be {total / 1e6:,.0f} million pixels; a deck "
            f"may be at most {limits.max_deck_pixels / 1e6:,.0f} million"
        )
    return rendered
