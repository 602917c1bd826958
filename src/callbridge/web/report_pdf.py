"""The engagement report as a PDF an IR team can forward: one page, the company's logo and
colour, the call's title and date, the headline figures, then the table by channel.

Drawn with reportlab from the same ``Engagement`` as the page and the CSV,
so the three never disagree. A PNG logo is placed as it is; an SVG logo is
left out (reportlab draws no SVG, and rasterising one would need a
renderer we do not ship): the company's name heads the page in its place.
Pure: figures in, bytes out; ``now`` is the caller's.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from callbridge.brand.colour import accent_or_default
from callbridge.brand.logo import PNG, Logo
from callbridge.events.schema import EventRecord
from callbridge.store.report import Engagement
from callbridge.web.report_figures import table_rows, tiles

INK = colors.HexColor("#1d2430")
MUTED = colors.HexColor("#566170")
LINE = colors.HexColor("#d8dde4")
TINT = colors.HexColor("#f4f6f8")
LOGO_HEIGHT = 0.55 * inch
LOGO_MAX_WIDTH = 2.6 * inch


def _styles(accent: colors.Color) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName="Helvetica", fontSize=10, leading=13, textColor=INK)
    return {
        "company": ParagraphStyle(
            "company", parent=base, fontName="Helvetica-Bold", fontSize=15, leading=18
        ),
        "kicker": ParagraphStyle(
            "kicker", parent=base, fontSize=9, textColor=accent, fontName="Helvetica-Bold"
        ),
        "title": ParagraphStyle(
            "title", parent=base, fontName="Helvetica-Bold", fontSize=18, leading=22
        ),
        "when": ParagraphStyle("when", parent=base, fontSize=11, textColor=MUTED),
        "h2": ParagraphStyle(
            "h2", parent=base, fontName="Helvetica-Bold", fontSize=12, leading=15, spaceBefore=6
        ),
        "tile_label": ParagraphStyle("tl", parent=base, fontSize=8.5, textColor=MUTED),
        "tile_value": ParagraphStyle(
            "tv", parent=base, fontName="Helvetica-Bold", fontSize=17, leading=21, alignment=TA_LEFT
        ),
        "tile_detail": ParagraphStyle("td", parent=base, fontSize=8.5, textColor=MUTED),
        "note": ParagraphStyle("note", parent=base, fontSize=8, leading=10.5, textColor=MUTED),
    }


def _logo(logo: Logo | None) -> Image | None:
    if logo is None or logo.media_type != PNG or not logo.height:
        return None
    width = LOGO_HEIGHT * logo.width / logo.height
    height = LOGO_HEIGHT
    if width > LOGO_MAX_WIDTH:
        width, height = LOGO_MAX_WIDTH, LOGO_MAX_WIDTH * logo.height / logo.width
    return Image(io.BytesIO(logo.data), width=width, height=height)


def render_pdf(
    record: EventRecord, figures: Engagement, when: str, now: datetime, logo: Logo | None = None
) -> bytes:
    """The report as a one-page PDF (US Letter). ``when`` is the call's start as the page
    prints it ("Thu 5 Nov 2026, 4:30 pm EST"); ``now`` goes in the footer."""
    accent = colors.HexColor(accent_or_default(record.company.accent))
    st = _styles(accent)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=LETTER,
        leftMargin=0.75 * inch,
        rightMargin=0.75 * inch,
        topMargin=0.6 * inch,
        bottomMargin=0.7 * inch,
        title=f"Engagement report: {record.company.ticker} {record.title}",
        author=record.company.name,
        subject="Earnings call engagement",
        creator="callbridge",
    )
    width = doc.width
    company = Paragraph(escape(record.company.name), st["company"])
    image = _logo(logo)
    head_left = image if image is not None else company
    head = Table(
        [[head_left, Paragraph("ENGAGEMENT REPORT", st["kicker"])]],
        colWidths=[width * 0.65, width * 0.35],
    )
    head.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ALIGN", (1, 0), (1, 0), "RIGHT"),
                ("LINEBELOW", (0, 0), (-1, 0), 3, accent),
                ("BOTTOMPADDING", (0, 0), (-1, 0), 10),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
            ]
        )
    )
    story: list[object] = [head, Spacer(1, 14)]
    if image is not None:
        story.append(Paragraph(escape(record.company.name), st["when"]))
    story += [
        Paragraph(f"{escape(record.company.ticker)} · {escape(record.title)}", st["title"]),
        Paragraph(escape(when), st["when"]),
        Spacer(1, 14),
        Paragraph("Headline figures", st["h2"]),
        Spacer(1, 4),
    ]
    cells = [
        [
            Paragraph(escape(t.label), st["tile_label"]),
            Paragraph(escape(t.value), st["tile_value"]),
            Paragraph(escape(t.detail), st["tile_detail"]),
        ]
        for t in tiles(figures)
    ]
    grid = Table(
        [cells[0:3], cells[3:6]],
        colWidths=[width / 3] * 3,
    )
    grid.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), TINT),
                ("INNERGRID", (0, 0), (-1, -1), 6, colors.white),
                ("BOX", (0, 0), (-1, -1), 0, colors.white),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 8),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 10),
            ]
        )
    )
    story += [grid, Spacer(1, 16), Paragraph("By channel", st["h2"]), Spacer(1, 4)]
    table = Table(table_rows(figures), colWidths=[width * 0.46] + [width * 0.18] * 3)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9.5),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 9.5),
                ("TEXTCOLOR", (0, 0), (-1, -1), INK),
                ("LINEBELOW", (0, 0), (-1, 0), 1.2, accent),
                ("LINEBELOW", (0, 1), (-1, -1), 0.5, LINE),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, TINT]),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
            ]
        )
    )
    story += [
        table,
        Spacer(1, 14),
        Paragraph(
            "Phone questions are the keypad's *1; written questions are typed on the webcast "
            "page. A web listener counts on the replay only for replay they chose to play; a "
            "phone caller is matched live and on the replay by the number their carrier gave. "
            "Peak concurrent counts phone callers and web listeners on the live call at once.",
            st["note"],
        ),
    ]
    footer = f"{record.company.name} · prepared {now:%d %b %Y %H:%M} UTC by callbridge"

    def page(canvas: Any, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(0.75 * inch, 0.45 * inch, footer)
        canvas.restoreState()

    doc.build(story, onFirstPage=page, onLaterPages=page)
    return out.getvalue()
