"""The published transcript as documents: TXT, HTML, DOCX and PDF, each headed alike.

Every document opens with the masthead (the company, the call's title and
date, the participants: the event's speakers with their titles), then an
optional "Key figures" table, then the transcript in the editor's sections
(``editing.marked_sections``), one paragraph per speaker turn led by its
time. The key figures are rows of strings, the header first, so whoever
builds them (``transcript.key_figures``) needs nothing of this module;
``()`` leaves the section out. All pure: values in, text or bytes out.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from callbridge.transcript.editing import Published, Section, marked_sections
from callbridge.transcript.turns import clock

KEY_FIGURES = "Key figures"
PARTICIPANTS = "Participants"
# Rows of a table of key figures, the header row first (what, value, period, time...).
KeyFigureRows = Sequence[Sequence[str]]


@dataclass(frozen=True)
class Masthead:
    """What heads every copy: who held the call, which call, when, who spoke."""

    company: str
    title: str
    date: str  # as the documents print it: "Thursday, November 5, 2026, 4:30 p.m. EST"
    speakers: tuple[tuple[str, str | None], ...] = ()  # (name, title)
    note: str = ""  # "Version 2, published ... by ..."

    @property
    def heading(self) -> str:
        return f"{self.company}: {self.title}"

    def speaker_lines(self) -> list[str]:
        return [f"{name}, {title}" if title else name for name, title in self.speakers]


def note_for(published: Published, when: str) -> str:
    """The masthead's line on the version: "Transcript version 2, reviewed and published ..."."""
    return f"Transcript version {published.version}, reviewed and published {when}."


def _sections(published: Published) -> list[Section]:
    return marked_sections(published.transcript, published.marks)


def _key_rows(rows: KeyFigureRows) -> list[list[str]]:
    return [[str(cell) for cell in row] for row in rows]


# -- text ------------------------------------------------------------------------------


def as_text(published: Published, head: Masthead, key_figures: KeyFigureRows = ()) -> str:
    """Plain text: the masthead, the key figures as aligned columns, then the turns."""
    title = head.heading
    lines = [title, "=" * len(title), head.date]
    if head.note:
        lines.append(head.note)
    lines.append("")
    if head.speakers:
        lines += [PARTICIPANTS, "-" * len(PARTICIPANTS)]
        lines += head.speaker_lines()
        lines.append("")
    rows = _key_rows(key_figures)
    if rows:
        widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
        lines += [KEY_FIGURES, "-" * len(KEY_FIGURES)]
        for row in rows:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)))
        lines.append("")
    for section in _sections(published):
        if section.heading is not None:
            rule = "-" if section.level == 2 else "~"
            lines += [section.heading, rule * len(section.heading), ""]
        for turn in section.turns:
            mark = " (recorded prompt)" if turn.prompt else ""
            lines.append(f"[{clock(turn.start)}] {turn.label}{mark}")
            lines.append(turn.text)
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# -- HTML ------------------------------------------------------------------------------

_STYLE = (
    "body{font:16px/1.55 Georgia,'Times New Roman',serif;color:#1d2430;max-width:46rem;"
    "margin:2rem auto;padding:0 1rem}"
    "header{border-bottom:3px solid #1d2430;margin-bottom:1.5rem;padding-bottom:.5rem}"
    ".company{font:600 1rem system-ui,sans-serif;letter-spacing:.02em;margin:0}"
    "h1{font-size:1.6rem;line-height:1.25;margin:.2rem 0}.when,.note{color:#566170;margin:.2rem 0}"
    "h2,h3{font-family:system-ui,sans-serif}h2{font-size:1.2rem;margin-top:2rem}"
    "h3{font-size:1rem;margin-top:1.5rem}.participants{padding-left:1.2rem}"
    "table{border-collapse:collapse;width:100%;font:14px system-ui,sans-serif;margin-bottom:1.5rem}"
    "th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #d8dde4}"
    ".turn{margin:0 0 1.2rem}.who{font:600 .95rem system-ui,sans-serif}"
    ".at{color:#566170;font-variant-numeric:tabular-nums;margin-right:.5rem;font-weight:400}"
    ".prompt{font-style:italic;color:#444}"
)


def as_html(published: Published, head: Masthead, key_figures: KeyFigureRows = ()) -> str:
    """A standalone HTML document (no scripts, no outside resources), every text escaped."""
    e = html.escape
    body = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(head.heading)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<header>",
        f'<p class="company">{e(head.company)}</p>',
        f"<h1>{e(head.title)}</h1>",
        f'<p class="when">{e(head.date)}</p>',
    ]
    if head.note:
        body.append(f'<p class="note">{e(head.note)}</p>')
    body.append("</header>")
    if head.speakers:
        body.append(f"<h2>{PARTICIPANTS}</h2>")
        body.append('<ul class="participants">')
        body += [f"<li>{e(line)}</li>" for line in head.speaker_lines()]
        body.append("</ul>")
    rows = _key_rows(key_figures)
    if rows:
        body.append(f'<h2>{KEY_FIGURES}</h2><table class="key-figures"><thead><tr>')
        body += [f"<th>{e(cell)}</th>" for cell in rows[0]]
        body.append("</tr></thead><tbody>")
        for row in rows[1:]:
            body.append("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>")
        body.append("</tbody></table>")
    for section in _sections(published):
        if section.heading is not None:
            tag = f"h{section.level}"
            body.append(f"<{tag}>{e(section.heading)}</{tag}>")
        for turn in section.turns:
            kind = "turn prompt" if turn.prompt else "turn"
            body.append(
                f'<p class="{kind}"><span class="who"><span class="at">{clock(turn.start)}</span>'
                f"{e(turn.label)}</span><br>{e(turn.text)}</p>"
            )
    body.append("</body></html>")
    return "\n".join(body) + "\n"


# -- DOCX ------------------------------------------------------------------------------


def as_docx(published: Published, head: Masthead, key_figures: KeyFigureRows = ()) -> bytes:
    """A Word document (python-docx) with the masthead, key figures and the sections' turns."""
    from docx import Document

    document = Document()
    document.core_properties.title = head.heading
    document.core_properties.author = head.company
    document.add_paragraph().add_run(head.company).bold = True
    document.add_heading(head.title, level=0)
    document.add_paragraph(head.date)
    if head.note:
        document.add_paragraph().add_run(head.note).italic = True
    if head.speakers:
        document.add_heading(PARTICIPANTS, level=1)
        for line in head.speaker_lines():
            document.add_paragraph(line, style="List Bullet")
    rows = _key_rows(key_figures)
    if rows:
        document.add_heading(KEY_FIGURES, level=1)
        table = document.add_table(rows=len(rows), cols=len(rows[0]))
        table.style = "Light List"
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                table.cell(r, c).text = cell
    for section in _sections(published):
        if section.heading is not None:
            document.add_heading(section.heading, level=section.level - 1)
        for turn in section.turns:
            paragraph = document.add_paragraph()
            paragraph.add_run(f"{clock(turn.start)}  {turn.label}").bold = True
            paragraph.add_run().add_break()
            paragraph.add_run(turn.text).italic = turn.prompt
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# -- PDF -------------------------------------------------------------------------------


def as_pdf(published: Published, head: Masthead, key_figures: KeyFigureRows = ()) -> bytes:
    """A PDF (reportlab, as the engagement report), US Letter, numbered pages."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import LETTER
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import inch
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    ink = colors.HexColor("#1d2430")
    muted = colors.HexColor("#566170")
    line = colors.HexColor("#d8dde4")
    base = ParagraphStyle("base", fontName="Times-Roman", fontSize=11, leading=15, textColor=ink)
    sans = ParagraphStyle("sans", parent=base, fontName="Helvetica", fontSize=10, leading=13)
    st = {
        "company": ParagraphStyle("company", parent=sans, fontName="Helvetica-Bold", fontSize=12),
        "title": ParagraphStyle(
            "title", parent=sans, fontName="Helvetica-Bold", fontSize=18, leading=22, spaceBefore=4
        ),
        "when": ParagraphStyle("when", parent=sans, fontSize=10.5, textColor=muted),
        "h2": ParagraphStyle(
            "h2",
            parent=sans,
            fontName="Helvetica-Bold",
            fontSize=13,
            leading=16,
            spaceBefore=12,
            spaceAfter=6,
        ),
        "h3": ParagraphStyle(
            "h3",
            parent=sans,
            fontName="Helvetica-Bold",
            fontSize=11,
            leading=14,
            spaceBefore=8,
            spaceAfter=4,
        ),
        "who": ParagraphStyle("who", parent=sans, fontName="Helvetica-Bold", spaceBefore=6),
        "said": ParagraphStyle("said", parent=base, spaceAfter=4),
        "prompt": ParagraphStyle("prompt", parent=base, fontName="Times-Italic", spaceAfter=4),
        "cell": ParagraphStyle("cell", parent=sans, fontSize=9, leading=11),
    }
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=LETTER,
        leftMargin=0.9 * inch,
        rightMargin=0.9 * inch,
        topMargin=0.7 * inch,
        bottomMargin=0.75 * inch,
        title=head.heading,
        author=head.company,
        subject="Earnings call transcript",
        creator="callbridge",
    )
    x = xml_escape
    story: list[Any] = [
        Paragraph(x(head.company), st["company"]),
        Paragraph(x(head.title), st["title"]),
        Paragraph(x(head.date), st["when"]),
    ]
    if head.note:
        story.append(Paragraph(x(head.note), st["when"]))
    rule = Table([[""]], colWidths=[doc.width], rowHeights=[4])
    rule.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 2, ink)]))
    story += [Spacer(1, 4), rule, Spacer(1, 6)]
    if head.speakers:
        story.append(Paragraph(PARTICIPANTS, st["h2"]))
        story += [Paragraph(x(text), sans) for text in head.speaker_lines()]
    rows = _key_rows(key_figures)
    if rows:
        story.append(Paragraph(KEY_FIGURES, st["h2"]))
        cells = [
            [Paragraph(f"<b>{x(cell)}</b>" if r == 0 else x(cell), st["cell"]) for cell in row]
            for r, row in enumerate(rows)
        ]
        table = Table(cells, colWidths=[doc.width / len(rows[0])] * len(rows[0]), repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("LINEBELOW", (0, 0), (-1, 0), 1.2, ink),
                    ("LINEBELOW", (0, 1), (-1, -1), 0.5, line),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    story.append(Spacer(1, 10))
    for section in _sections(published):
        if section.heading is not None:
            story.append(Paragraph(x(section.heading), st["h2" if section.level == 2 else "h3"]))
        for turn in section.turns:
            story.append(
                Paragraph(
                    f'<font color="#566170">{clock(turn.start)}</font>&nbsp;&nbsp;{x(turn.label)}',
                    st["who"],
                )
            )
            story.append(Paragraph(x(turn.text), st["prompt" if turn.prompt else "said"]))
    footer = f"{head.company} · {head.title}"

    def page(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(muted)
        canvas.drawString(0.9 * inch, 0.45 * inch, footer[:110])
        canvas.drawRightString(LETTER[0] - 0.9 * inch, 0.45 * inch, f"Page {document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=page, onLaterPages=page)
    return out.getvalue()


RENDERERS = {"txt": as_text, "html": as_html}
BINARY_RENDERERS = {"docx": as_docx, "pdf": as_pdf}
