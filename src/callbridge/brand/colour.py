"""The accent colour: ``#rrggbb``, dark enough to carry white text (WCAG AA, 4.5:1).

The accent fills the brand bar's rule and the webcast page's buttons, whose
labels are white; a colour that white text cannot be read on is refused
(never darkened behind the operator's back: a brand's colour is the brand's
choice), and the refusal names a darker shade of the same hue that passes.
Pure: no web, no store.
"""

from __future__ import annotations

import re

# A deep navy: reads as "corporate" and carries white text at 10:1.
DEFAULT_ACCENT = "#1f3a5f"
MIN_CONTRAST = 4.5  # WCAG 2.x AA for normal text
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb`` (0 black … 1 white)."""
    r, g, b = (_channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(colour: str) -> float:
    """The contrast ratio of white text on ``colour`` (1 … 21)."""
    return 1.05 / (luminance(colour) + 0.05)


def darker(colour: str, target: float = MIN_CONTRAST) -> str:
    """The same hue scaled down until white text on it reaches ``target``."""
    r, g, b = _rgb(colour)
    for step in range(100, -1, -1):
        f = step / 100
        shade = f"#{round(r * f):02x}{round(g * f):02x}{round(b * f):02x}"
        if contrast_with_white(shade) >= target:
            return shade
    return "#000000"


def check_accent(value: str) -> str:
    """``value`` in lower case if it is ``#rrggbb`` and carries white text; else ValueError.

    The message says why and, for a colour too light, which shade would pass.
    """
    value = value.strip()
    if not _HEX.match(value):
        raise ValueError("is a colour written #rrggbb, e.g. #1f3a5f")
    value = value.lower()
    ratio = contrast_with_white(value)
    if ratio < MIN_CONTRAST:
        raise ValueError(
            f"is too light for white text on it ({ratio:.1f}:1; WCAG AA needs "
            f"{MIN_CONTRAST}:1): not saved. {darker(value)} is the same hue dark enough"
        )
    return value


def accent_or_default(accent: str | None) -> str:
    """``accent`` if it is ``#rrggbb`` (safe to write into CSS as it is), else the default."""
    return accent.lower() if accent is not None and _HEX.match(accent) else DEFAULT_ACCENT


def stylesheet(accent: str | None) -> str:
    """The per-event CSS: the accent as custom properties (the rules are in static/brand.css).

    ``--accent`` is the site's own link and button colour (static/style.css),
    so the event's pages take the brand's colour throughout.

    ``accent`` must have passed ``check_accent`` (or be None for the default):
    it is written into CSS as it is.
    """
    colour = accent_or_default(accent)
    r, g, b = _rgb(colour)
    return (
        ":root {\n"
        f"  --accent: {colour};\n"
        f"  --brand-accent: {colour};\n"
        "  --brand-on-accent: #ffffff;\n"
        f"  --brand-tint: rgba({r}, {g}, {b}, 0.08);\n"
        "}\n"
    )
