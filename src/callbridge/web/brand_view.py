"""What a page prints of a company's brand: its name, its logo's address, its stylesheet
(``brand/`` holds the checks, below ``events``; this reads an ``EventRecord``).

Built from the ``EventRecord`` alone (the logo's digest and size travel with
the company), so a page needs no second query. The addresses carry the
logo's digest and the accent, so a browser or the cache tier may keep them
while they stay the same and fetches anew the moment either changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbridge.brand.colour import DEFAULT_ACCENT
from callbridge.events.schema import EventRecord


@dataclass(frozen=True)
class BrandView:
    name: str
    ticker: str
    accent: str
    css_href: str
    logo_href: str | None = None
    logo_width: int = 0
    logo_height: int = 0

    @property
    def logo_shown_width(self) -> int:
        """The logo's width at the bar's height (48 px): the img's size attributes."""
        if not self.logo_height:
            return 0
        return max(1, round(self.logo_width * LOGO_HEIGHT / self.logo_height))


LOGO_HEIGHT = 48


def logo_href(event_id: int, digest: str) -> str:
    return f"/events/{event_id}/logo?v={digest}"


def brand_of(record: EventRecord) -> BrandView:
    """The brand of ``record``'s company, with the professional defaults where none is set."""
    company = record.company
    accent = company.accent or DEFAULT_ACCENT
    logo = company.logo
    return BrandView(
        name=company.name,
        ticker=company.ticker,
        accent=accent,
        css_href=f"/events/{record.id}/brand.css?v={accent.removeprefix('#')}",
        logo_href=logo_href(record.id, logo.digest) if logo else None,
        logo_width=logo.width if logo else 0,
        logo_height=logo.height if logo else 0,
    )
