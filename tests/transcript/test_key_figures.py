"""Key figures read from an earnings call's transcript: what, value, period, and when."""

from __future__ import annotations

import csv
import io
import re

import pytest

from callbridge.transcript.figures import write_figures
from callbridge.transcript.key_figures import (
    CSV_HEAD,
    KeyFigure,
    as_csv,
    as_html,
    as_text,
    key_figures,
)
from callbridge.transcript.model import Transcript, TranscriptSegment

# A call as the engine hears it (words), written as the transcript keeps it (figures).
SAID = [
    (
        0.0,
        6.0,
        "Operator",
        "Good afternoon and welcome to the Northwind third quarter twenty "
        "twenty six earnings call.",
    ),
    (
        20.0,
        30.0,
        "Jane Roe",
        "Revenue for the quarter was forty two million dollars, up twelve percent year over year.",
    ),
    (
        30.0,
        38.0,
        "Jane Roe",
        "Gross margin was sixty one point four percent, and operating margin "
        "expanded by fifty basis points.",
    ),
    (
        38.0,
        48.0,
        "Jane Roe",
        "Diluted earnings per share were thirty one cents. Operating "
        "expenses decreased three percent to eighteen million dollars.",
    ),
    (
        48.0,
        55.0,
        "Jane Roe",
        "We ended the quarter with one point two billion dollars in cash and equivalents.",
    ),
    (55.0, 60.0, "Jane Roe", "Turning to our outlook for the fourth quarter."),
    (
        60.0,
        70.0,
        "Jane Roe",
        "We expect revenue of forty five to forty seven million dollars "
        "and adjusted EBITDA margin between twenty and twenty two percent.",
    ),
    (
        70.0,
        80.0,
        "Jane Roe",
        "For fiscal twenty twenty seven, we expect revenue between one "
        "hundred ninety and two hundred million dollars.",
    ),
    (80.0, 85.0, "Jane Roe", "The board declared a dividend of five cents per share."),
    (
        90.0,
        100.0,
        "Ana Lyst, Acme Capital",
        "Thanks. What drove European sales of two hundred "
        "million euros, and why did churn fall to two percent?",
    ),
    (
        100.0,
        108.0,
        "Jane Roe",
        "Net loss per share was eight cents in the third quarter of twenty twenty five.",
    ),
    (108.0, 112.0, "Jane Roe", "Thank you all for joining."),
]
CALL = Transcript(
    segments=[TranscriptSegment(a, b, who, write_figures(text)) for a, b, who, text in SAID],
    engine="test",
    duration_s=112.0,
    elapsed_s=1.0,
)


def table(rows: list[KeyFigure]) -> list[tuple[str | None, str, str | None]]:
    return [(row.what, row.value, row.period) for row in rows]


def test_the_figures_of_an_earnings_call_with_what_they_measure_and_their_period() -> None:
    assert table(key_figures(CALL)) == [
        ("revenue", "$42 million", "Q3 2026"),  # "the quarter": the call's own
        ("revenue growth", "12%", "Q3 2026"),
        ("gross margin", "61.4%", "Q3 2026"),
        ("operating margin change", "50 basis points", "Q3 2026"),
        ("EPS", "$0.31", "Q3 2026"),
        ("operating expenses growth", "-3%", "Q3 2026"),  # "decreased": negative
        ("operating expenses", "$18 million", "Q3 2026"),
        ("cash", "$1.2 billion", "Q3 2026"),
        ("revenue guidance", "$45 million to $47 million", "Q4"),  # the outlook's quarter
        ("adjusted EBITDA margin guidance", "20% to 22%", "Q4"),
        ("revenue guidance", "$190 million to $200 million", "fiscal 2027"),
        ("dividend per share", "$0.05", "Q3 2026"),  # not the outlook's fiscal 2027
        ("revenue", "€200 million", None),
        ("churn", "2%", None),
        ("loss per share", "$0.08", "Q3 2025"),
    ]


def test_each_figure_is_at_the_start_of_its_sentence_in_its_segment() -> None:
    rows = key_figures(CALL)
    assert [row.segment for row in rows][:5] == [1, 1, 2, 2, 3]
    assert rows[0].at == 20.0 and rows[0].clock == "0:20"
    eps, opex = rows[4], rows[5]
    assert eps.at == 38.0
    # The second sentence of segment 3 starts about halfway through its text.
    assert 41.0 < opex.at < 44.0
    assert opex.said == "Operating expenses decreased 3% to $18 million."
    assert rows[12].speaker == "Ana Lyst, Acme Capital"


@pytest.mark.parametrize(
    ("sentence", "rows"),
    [
        ("We delivered $42 million in revenue.", [("revenue", "$42 million", None)]),
        (
            "Non-GAAP gross margin came in at 58.2%, down 120 basis points.",
            [
                ("non-GAAP gross margin", "58.2%", None),
                ("non-GAAP gross margin change", "-120 basis points", None),
            ],
        ),
        (
            "Adjusted EPS was $1.23, compared with $1.05 a year ago.",
            [("adjusted EPS", "$1.23", None), ("adjusted EPS", "$1.05", None)],
        ),
        ("Earnings of $1.23 per share in Q2 2026.", [("EPS", "$1.23", "Q2 2026")]),
        (
            "For the full year, we now expect free cash flow of $300 million to $320 million.",
            [("free cash flow guidance", "$300 million to $320 million", "full year")],
        ),
        (
            "Full-year 2026 revenue guidance is between £850 million and £870 million.",
            [("revenue guidance", "£850 million to £870 million", "full year 2026")],
        ),
        (
            "In H1 2026, organic revenue grew 4.5% and revenue in Japan was ¥12 billion.",
            [("organic revenue growth", "4.5%", "H1 2026"), ("revenue", "¥12 billion", "H1 2026")],
        ),
        (
            "Revenue declined -2.5% year over year in the second quarter.",
            [("revenue growth", "-2.5%", "Q2")],
        ),
        ("We repurchased $50 million of shares.", [("share repurchases", "$50 million", None)]),
        ("It cost C$42 million.", [(None, "C$42 million", None)]),
        (
            "Revenue of $42 million was better than expected.",
            [("revenue", "$42 million", None)],
        ),
        ("The project cost $5 million.", [(None, "$5 million", None)]),
        (
            "EPS grew 15% over the year-over-year period to $1.23.",
            [("EPS growth", "15%", None), ("EPS", "$1.23", None)],
        ),
        (
            "This year, 12% of our revenue came from Europe.",
            [("revenue", "12%", "full year")],
        ),
        ("Thank you, operator.", []),
        ("We have 10,000 customers since 2019.", []),
    ],
)
def test_figures_in_realistic_sentences(
    sentence: str, rows: list[tuple[str | None, str, str | None]]
) -> None:
    transcript = Transcript([TranscriptSegment(5.0, 9.0, "CFO", sentence)], "test", 10.0, 1.0)
    assert table(key_figures(transcript)) == rows


def test_a_period_said_earlier_in_the_turn_carries_and_ends_with_the_turn() -> None:
    transcript = Transcript(
        [
            TranscriptSegment(0.0, 4.0, "CFO", "Now to Q4 2026."),
            TranscriptSegment(4.0, 8.0, "CFO", "Revenue was $45 million."),
            TranscriptSegment(8.0, 12.0, "Analyst", "Was gross margin 60%?"),
        ],
        "test",
        12.0,
        1.0,
    )
    assert table(key_figures(transcript)) == [
        ("revenue", "$45 million", "Q4 2026"),
        ("gross margin", "60%", None),
    ]


def test_the_rows_as_text_html_and_csv() -> None:
    rows = key_figures(CALL)[:3]
    text = as_text(rows)
    lines = text.splitlines()
    assert lines[0] == "Key figures"
    assert re.split(r"\s{2,}", lines[2]) == ["Time", "What", "Value", "Period"]
    assert re.split(r"\s{2,}", lines[3]) == ["0:20", "Revenue", "$42 million", "Q3 2026"]
    page = as_html(rows, link=lambda row: f"/events/7/webcast#t={row.at:.0f}")
    assert '<a href="/events/7/webcast#t=20">0:20</a>' in page
    assert "<td>Gross margin</td><td>61.4%</td><td>Q3 2026</td>" in page
    assert "<a " not in as_html(rows)  # a document read apart from the page: plain times
    read = list(csv.reader(io.StringIO(as_csv(rows))))
    assert tuple(read[0]) == CSV_HEAD
    assert read[1][:6] == ["20.00", "0:20", "revenue", "$42 million", "Q3 2026", "Jane Roe"]
    assert as_text([]) == "" and as_html([]) == ""


def test_words_that_are_anyones_are_escaped_and_never_a_spreadsheet_formula() -> None:
    transcript = Transcript(
        [TranscriptSegment(0.0, 2.0, "=HYPERLINK(1)", "<b>Revenue</b> was $5 million.")],
        "test",
        2.0,
        1.0,
    )
    rows = key_figures(transcript)
    assert "<b>" not in as_html(rows) or "&lt;b&gt;" in as_html(rows)
    read = list(csv.reader(io.StringIO(as_csv(rows))))
    assert read[1][5] == "'=HYPERLINK(1)"
