"""The published transcript's documents: each headed alike, in the editor's sections,
with a "Key figures" table when rows are given; every text escaped."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import docx
import pypdfium2 as pdfium

from callbridge.transcript import published as docs
from callbridge.transcript.editing import EditField, apply, publish
from callbridge.transcript.model import Transcript, TranscriptSegment

AUTOMATIC = Transcript(
    segments=[
        TranscriptSegment(1.0, 4.0, "Operator", "Welcome to the Northwind call."),
        TranscriptSegment(7.0, 11.0, "Speaker 1", "Sales of zylo prin grew to $42 million."),
        TranscriptSegment(75.0, 78.0, "Speaker 2", "What drove <growth> & margins?"),
    ],
    engine="fake",
    duration_s=90.0,
    elapsed_s=1.0,
)
DRAFT = apply(
    AUTOMATIC,
    {
        (1, EditField.TEXT): "Sales of Zyloprin grew to $42 million.",
        (1, EditField.SPEAKER): "Jane Roe, Chief Financial Officer",
        (2, EditField.MARK): "question:Ann Lee, Acme Securities",
        (1, EditField.MARK): "remarks",
    },
)
DONE = publish(DRAFT, 2, datetime(2026, 11, 6, 15, 0, tzinfo=UTC), "dana")
HEAD = docs.Masthead(
    company="Northwind Biologics, Inc.",
    title="Third Quarter Fiscal Year 2026 Financial Results",
    date="Thursday, November 5, 2026, 4:30 p.m. EST",
    speakers=(("Jane Roe", "Chief Financial Officer"), ("Mark Chen", None)),
    note="Transcript version 2, reviewed and published on November 6, 2026.",
)
FIGURES = [["What", "Value", "Period", "At"], ["Revenue", "$42 million", "Q3 2026", "0:07"]]


def test_text_is_headed_and_reads_in_the_editors_sections() -> None:
    text = docs.as_text(DONE, HEAD, FIGURES)
    lines = text.splitlines()
    assert lines[0] == "Northwind Biologics, Inc.: Third Quarter Fiscal Year 2026 Financial Results"
    assert lines[2] == "Thursday, November 5, 2026, 4:30 p.m. EST"
    assert "Jane Roe, Chief Financial Officer" in lines and "Mark Chen" in lines
    assert "Revenue  $42 million  Q3 2026  0:07" in text
    assert text.index("Prepared remarks") < text.index("[0:07] Jane Roe, Chief Financial Officer")
    assert "Question from Ann Lee, Acme Securities" in text
    assert "Sales of Zyloprin grew to $42 million." in text
    assert "zylo prin" not in text
    # No key figures given: no empty section either.
    assert docs.KEY_FIGURES not in docs.as_text(DONE, HEAD)


def test_html_escapes_every_text() -> None:
    page = docs.as_html(DONE, HEAD, FIGURES)
    assert "What drove &lt;growth&gt; &amp; margins?" in page
    assert "<h2>Prepared remarks</h2>" in page
    assert "<h3>Question from Ann Lee, Acme Securities</h3>" in page
    assert "<td>$42 million</td>" in page
    assert "<script" not in page


def test_word_and_pdf_carry_the_same_words() -> None:
    document = docx.Document(io.BytesIO(docs.as_docx(DONE, HEAD, FIGURES)))
    paragraphs = "\n".join(p.text for p in document.paragraphs)
    assert "Northwind Biologics, Inc." in paragraphs
    assert "Sales of Zyloprin grew to $42 million." in paragraphs
    assert "Question from Ann Lee, Acme Securities" in paragraphs
    assert document.tables[0].cell(1, 1).text == "$42 million"

    pdf = pdfium.PdfDocument(io.BytesIO(docs.as_pdf(DONE, HEAD, FIGURES)))
    text = " ".join(" ".join(page.get_textpage().get_text_range().split()) for page in pdf)
    pdf.close()
    for words in (
        "Northwind Biologics, Inc.",
        "Third Quarter Fiscal Year 2026 Financial Results",
        "Thursday, November 5, 2026, 4:30 p.m. EST",
        "Jane Roe, Chief Financial Officer",
        "Key figures",
        "Sales of Zyloprin grew to $42 million.",
        "What drove <growth> & margins?",
        "Page 1",
    ):
        assert words in text, words
