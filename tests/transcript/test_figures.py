"""Spoken figures written as an analyst writes them ("$42 million", "12%", "Q3 2026")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.transcript.engine import apply_glossary
from callbridge.transcript.figures import continues_figure, write_figures
from callbridge.transcript.transcribe import written
from callbridge.transcript.wer import number_words

ORDINAL = ["first", "second", "third", "fourth"]


def spoken(value: int, hyphens: bool = False) -> str:
    """``value`` as a speaker (and an engine writing words) says it: "forty two", "forty-two"."""
    words = number_words(value)
    if hyphens:
        for tens in ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"):
            words = words.replace(f"{tens} ", f"{tens}-")
    return words


def year(value: int) -> str:
    """A year as said on a call: "twenty twenty six", "two thousand nine"."""
    if value % 100 < 10:
        return number_words(value)
    return f"{number_words(value // 100)} {number_words(value % 100)}"


@pytest.mark.parametrize(
    ("said", "written_as"),
    [
        ("Revenue grew to forty two million dollars.", "Revenue grew to $42 million."),
        ("up twelve percent year over year", "up 12% year over year"),
        ("net loss per share was thirty one cents", "net loss per share was $0.31"),
        ("earnings of thirty-one cents per share", "earnings of $0.31 per share"),
        ("in the third quarter of twenty twenty six,", "in Q3 2026,"),
        ("For fiscal twenty twenty seven we expect", "For fiscal 2027 we expect"),
        ("gross margin was sixty-one point four percent.", "gross margin was 61.4%."),
        (
            "revenue of eight hundred fifty to eight hundred seventy million dollars",
            "revenue of $850 million to $870 million",
        ),
        ("one point two billion dollars in cash", "$1.2 billion in cash"),
        # Figures the engine already wrote in digits get the same form.
        ("Revenue grew to 42 million dollars.", "Revenue grew to $42 million."),
        ("net loss of 31 cents per share", "net loss of $0.31 per share"),
        ("up 12 per cent", "up 12%"),
        ("ten thousand customers", "10,000 customers"),
        # The sign written and the word said: one dollar sign (it was "$$94 million").
        ("$94 million dollars", "$94 million"),
        ("revenue of $1.2 billion dollars, up", "revenue of $1.2 billion, up"),
        ("$94 dollars", "$94"),
        # Ranges, basis points, decimals, declines and other currencies.
        ("growth of three to five percent", "growth of 3% to 5%"),
        ("twelve to fifteen percent", "12% to 15%"),
        ("margin expanded by fifty basis points", "margin expanded by 50 basis points"),
        ("a decline of minus two point five percent", "a decline of -2.5%"),
        ("earnings of one dollar and five cents per share", "earnings of $1.05 per share"),
        ("two hundred million euros", "€200 million"),
        ("one hundred twenty million pounds sterling", "£120 million"),
        # What engines make of what was said.
        ("fifty eight points two percent", "58.2%"),
        ("results for the third quarter on twenty twenty six", "results for Q3 2026"),
        ("the Third Quarter 2026 results", "Q3 2026 results"),
        ("Revenue Rooter Forty Two Million Dollars.", "Revenue Rooter $42 million."),
        # A digit after "point" heard as its homophone, where only a figure fits (bench).
        ("about one point to a billion dollars", "about $1.2 billion"),
        ("sixty-one points for Percent, compared with", "61.4%, compared with"),
        ("five points, five million dollars", "$5.5 million"),
        ("It points to forty percent.", "It points to 40%."),
        ("a point to a thousand people", "a point to a thousand people"),
        ("the third quarter on 20 twenty-five.", "Q3 2025."),
        ("the second quarter on twenty-twenty-five.", "Q2 2025."),
        ("the second quarter on 20-twenty-five.", "Q2 2025."),
        # What is not a figure stays as said.
        ("Welcome to the third quarter call.", "Welcome to the third quarter call."),
        (
            "The first question is from one of our owners.",
            "The first question is from one of our owners.",
        ),
        ("Thank you, operator.", "Thank you, operator."),
        ("We spoke on May 5th.", "We spoke on May 5th."),
        ("since 2019", "since 2019"),
    ],
)
def test_figures_are_written_as_an_analyst_writes_them(said: str, written_as: str) -> None:
    assert write_figures(said) == written_as


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 999), st.sampled_from(["million", "billion"]), st.booleans())
def test_money(value: int, scale: str, hyphens: bool) -> None:
    said = f"revenue was {spoken(value, hyphens)} {scale} dollars"
    assert write_figures(said) == f"revenue was ${value} {scale}"
    assert write_figures(f"revenue was {value} {scale} dollars") == f"revenue was ${value} {scale}"


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 99), st.integers(0, 9), st.booleans())
def test_percentages(whole: int, tenth: int, hyphens: bool) -> None:
    assert write_figures(f"up {spoken(whole, hyphens)} percent") == f"up {whole}%"
    said = f"a margin of {spoken(whole, hyphens)} point {number_words(tenth)} percent"
    assert write_figures(said) == f"a margin of {whole}.{tenth}%"


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 99), st.booleans())
def test_per_share_amounts(cents: int, hyphens: bool) -> None:
    said = f"a loss of {spoken(cents, hyphens)} cents per share"
    assert write_figures(said) == f"a loss of ${cents / 100:.2f} per share"


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(2001, 2039))
def test_quarters_and_years(quarter: int, value: int) -> None:
    said = f"results for the {ORDINAL[quarter - 1]} quarter of {year(value)} were"
    assert write_figures(said) == f"results for Q{quarter} {value} were"
    assert (
        write_figures(f"guidance for fiscal {year(value)} is") == f"guidance for fiscal {value} is"
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "we",
                "the",
                "customers",
                "revenue",
                "grew",
                "margin",
                "thank",
                "you",
                "operator",
                "question",
                "call",
                "welcome",
                "strong",
                "quarter",
                "demand",
                "pricing,",
                "held",
                "steady.",
                "and",
            ]
        ),
        min_size=1,
        max_size=20,
    )
)
def test_words_without_figures_are_left_alone(words: list[str]) -> None:
    text = " ".join(words)
    assert write_figures(text) == text.replace(" ,", ",").replace(" .", ".")


@pytest.mark.parametrize(
    "figure",
    [
        "$42 million",
        "12%",
        "$0.31 per share",
        "Q3 2026",
        "fiscal 2027",
        "61.4%",
        "3% to 5%",
        "€200 million",
        "£120 million",
        "$1.2 billion",
    ],
)
def test_written_figures_stay_as_they_are(figure: str) -> None:
    assert write_figures(f"It was {figure} this time.") == f"It was {figure} this time."


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_text(text: str) -> None:
    assert isinstance(write_figures(text), str)


def test_long_text_is_normalised_sentence_by_sentence() -> None:
    text = "Revenue grew twelve percent. " * 60
    assert write_figures(text) == ("Revenue grew 12%. " * 60).strip()


def test_the_glossary_is_applied_last() -> None:
    glossary = ["T-DM1", "NorthWind"]
    said = "northwind sold t dm1 worth forty two million dollars"
    assert written(said, glossary) == "NorthWind sold T-DM1 worth $42 million"
    assert written("[inaudible]", glossary) == "[inaudible]"
    assert apply_glossary(write_figures(said), glossary) == written(said, glossary)


@pytest.mark.parametrize(
    ("said", "written_as"),
    [
        # An engine's quotes once left the whole sentence's figures as words.
        (
            'Her name for "Shower Fourteen" sent in the second quarter of twenty twenty six.',
            'Her name for "Shower Fourteen" sent in Q2 2026.',
        ),
        (
            'a "best" year: revenue of forty two million dollars',
            'a "best" year: revenue of $42 million',
        ),
        ("R&D rose nine percent", "R&D rose 9%"),
        ("up twelve percent — a record", "up 12% — a record"),
    ],
)
def test_symbols_the_grammar_mishandles_cost_no_figure(said: str, written_as: str) -> None:
    assert write_figures(said) == written_as


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 999),
    st.integers(0, 99),
    st.sampled_from(["", " thousand", " million", " billion"]),
)
def test_a_dollar_sign_written_and_said_is_one(value: int, cents: int, scale: str) -> None:
    """An engine that writes the sign and also says "dollars": one sign, never "$$"."""
    figure = f"${value}.{cents:02d}{scale}" if cents else f"${value}{scale}"
    assert (
        write_figures(f"revenue of {figure} dollars this year") == f"revenue of {figure} this year"
    )


@pytest.mark.parametrize(
    ("said", "written_as"),
    [
        # An engine hearing a figure's words one by one puts stops and commas between them.
        ("Six hundred. Seventy seven. Million dollars.", "$677 million."),
        ("Six hundred, ninety three, million dollars.", "$693 million."),
        ("one hundred, thirty, two million dollars", "$132 million"),
        ("Sixty. Five percent.", "65%."),
        # Where something else may be meant, the marks stay.
        (
            "In twenty twenty five, thirty new customers joined.",
            "In 2025, 30 new customers joined.",
        ),
        ("We hired two hundred, ten of them engineers.", "We hired 200, ten of them engineers."),
        ("There were forty. Two of them left.", "There were 40. Two of them left."),
    ],
)
def test_a_figure_said_word_by_word_is_one_figure(said: str, written_as: str) -> None:
    assert write_figures(said) == written_as


def test_a_figure_split_between_segments_is_recognised() -> None:
    assert continues_figure("Six hundred.", "Seventy seven million dollars.")
    assert continues_figure("Seventy seven.", "Million dollars.")
    assert not continues_figure("Six hundred.", "Seventy seven.")  # no unit follows: unsure
    assert not continues_figure("Thank you.", "Million dollars.")
    assert not continues_figure("We hired two hundred.", "Ten of them are engineers.")
