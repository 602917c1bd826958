"""Spoken figures written as an analyst writes them ("$42 million", "12%", "Q3 2026")."""

from __future__ import annotations

import re

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
        # A stop the engine wrote after "point", where a number and its unit follow.
        ("margin was sixty one point. Four percent of sales", "margin was 61.4% of sales"),
        ("we scored a point. Four customers left", "we scored a point. Four customers left"),
        ("gross margin was 61 point. 4% of sales", "gross margin was 61.4% of sales"),
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
    assert continues_figure("Gross margin was sixty one point.", "Four percent of sales.")
    assert not continues_figure("We scored a point.", "Four customers left.")
    assert not continues_figure("We hired two hundred.", "Ten of them are engineers.")
    # A cut inside speech ("was 31" | "cents and we"): the unit after it.
    assert continues_figure("Net loss per share was 31", "cents and we ended the quarter")
    assert continues_figure("net loss per share was thirty one", "Cents.")
    assert continues_figure("margin was 61.4", "percent of sales")
    assert not continues_figure("We have 31", "Customers in Europe.")


def test_a_figure_read_with_pauses_the_engine_marked_is_one_figure() -> None:
    # Moonshine marks a pause between a figure's words with a comma.
    assert write_figures("thirty, four per cent,") == "34%,"
    assert write_figures("twenty seven, per cent,") == "27%,"
    assert write_figures("Six hundred twenty, seven million dollars,") == "$627 million,"
    assert continues_figure("Six hundred.", "twenty, seven million dollars, seventeen thousand")


@pytest.mark.parametrize(
    ("said", "written_as"),
    [
        # Ranges: in one currency and scale, "between ... and" kept as said.
        ("one to two billion dollars", "$1 billion to $2 billion"),
        (
            "between eight hundred fifty and eight hundred seventy million dollars",
            "between $850 million and $870 million",
        ),
        ("between twelve and fifteen percent", "between 12% and 15%"),
        ("thirty one to thirty five cents per share", "$0.31 to $0.35 per share"),
        ("between forty two and forty five cents per share", "between $0.42 and $0.45 per share"),
        ("between fifty and seventy five basis points", "between 50 and 75 basis points"),
        ("one to two billion euros", "€1 billion to €2 billion"),
        ("fifty to sixty five million pounds sterling", "£50 million to £65 million"),
        # "between one hundred and fifty million" is one number, not a range.
        (
            "between two hundred and three hundred million dollars",
            "between $200 million and $300 million",
        ),
        # Per-share amounts.
        ("EPS of a dollar twenty three", "EPS of $1.23"),
        ("earnings of one dollar and twenty three cents per share", "earnings of $1.23 per share"),
        ("a hundred million dollars", "$100 million"),
        # Basis points as engines write them, and decimals.
        ("fifty bips", "50 basis points"),
        ("twelve point five basis points", "12.5 basis points"),
        ("a margin of sixty one point four five percent", "a margin of 61.45%"),
        ("up zero point zero five percent", "up 0.05%"),
        # Quarters, halves and fiscal years.
        ("Q three twenty twenty six", "Q3 2026"),
        ("in Q three revenue grew", "in Q3 revenue grew"),
        ("for the first half of twenty twenty six", "for H1 2026"),
        ("fiscal twenty seven", "fiscal 2027"),
        ("for fiscal year twenty twenty seven", "for fiscal year 2027"),
        # Declines.
        ("growth of negative three percent", "growth of -3%"),
        ("revenue declined three percent", "revenue declined 3%"),
        # Other currencies.
        ("five billion yen", "¥5 billion"),
        ("one hundred twenty million pounds", "£120 million"),
        ("one hundred twenty million British pounds", "£120 million"),
        ("forty two million Canadian dollars", "C$42 million"),
        ("forty two million Swiss francs", "CHF 42 million"),
        # Pounds of something are weight; a hundred people are people.
        ("five million pounds of copper", "5 million pounds of copper"),
        ("a hundred people", "a hundred people"),
        ("we had between two and three customers", "we had between two and three customers"),
    ],
)
def test_ranges_shares_points_periods_and_currencies(said: str, written_as: str) -> None:
    assert write_figures(said) == written_as


# -- read back: what the normaliser wrote, said again ---------------------------------

_CURRENCY_WORDS = {
    "$": "dollars",
    "€": "euros",
    "¥": "yen",
    "£": "pounds sterling",
    "C$": "Canadian dollars",
    "CHF ": "Swiss francs",
}
_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_QUARTER_WORD = {"Q": "quarter", "H": "half"}


def _fig(tag: str) -> str:
    return (
        rf"(?P<neg{tag}>-)?(?P<cur{tag}>C\$|CHF |[$€£¥])?(?P<num{tag}>\d[\d,]*(?:\.\d+)?)"
        rf"(?: (?P<scale{tag}>thousand|million|billion))?(?P<unit{tag}>%| basis points?)?"
    )


_READ = re.compile(
    r"(?P<period>[QH])(?P<which>[1-4]) (?P<pyear>\d{4})"
    r"|(?P<fiscal>fiscal) (?P<fyear>\d{4})"
    rf"|(?:{_fig('a')}) (?P<join>to|and) (?:{_fig('b')})"
    rf"|{_fig('')}"
)


def _number(text: str) -> str:
    whole, _, fraction = text.replace(",", "").partition(".")
    words = number_words(int(whole))
    if fraction:
        words += " point " + " ".join(_DIGITS[int(d)] for d in fraction)
    return words


def _money(currency: str, amount: str) -> str:
    """An amount without a scale, as said: "$1.05" is "one dollar and five cents"."""
    whole, _, cents = amount.replace(",", "").partition(".")
    if currency != "$" or not cents:
        name = _CURRENCY_WORDS[currency]
        return f"{_number(amount)} {name[:-1] if name.endswith('s') and whole == '1' else name}"
    cents_words = f"{number_words(int(cents))} cent{'' if int(cents) == 1 else 's'}"
    if int(whole) == 0:
        return cents_words
    return f"{number_words(int(whole))} dollar{'' if whole == '1' else 's'} and {cents_words}"


def _suffix(match: re.Match[str], tag: str) -> tuple[str, str, str, str]:
    return (
        match.group(f"neg{tag}") or "",
        match.group(f"cur{tag}") or "",
        match.group(f"scale{tag}") or "",
        match.group(f"unit{tag}") or "",
    )


def _one(match: re.Match[str], tag: str) -> str:
    neg, currency, scale, unit = _suffix(match, tag)
    amount = match.group(f"num{tag}")
    minus = "minus " if neg else ""
    if unit == "%":
        return f"{minus}{_number(amount)} percent"
    if unit:
        return f"{minus}{_number(amount)}{unit}"
    if currency and scale:
        return f"{minus}{_number(amount)} {scale} {_CURRENCY_WORDS[currency]}"
    if currency:
        return minus + _money(currency, amount)
    return minus + _number(amount)


def _range(match: re.Match[str]) -> str:
    a, b = _suffix(match, "a"), _suffix(match, "b")
    low, high, join = match.group("numa"), match.group("numb"), match.group("join")
    if a != b or a[0]:
        return f"{_one(match, 'a')} {join} {_one(match, 'b')}"
    _, currency, scale, unit = a
    if currency == "$" and not scale and low.startswith("0.") and high.startswith("0."):
        return f"{number_words(int(low[2:]))} {join} {number_words(int(high[2:]))} cents"
    if unit == "%":
        tail = "percent"
    elif unit:
        tail = "basis points"
    else:
        tail = f"{scale} {_CURRENCY_WORDS[currency]}"
    return f"{_number(low)} {join} {_number(high)} {tail}"


def _year_words(text: str) -> str:
    value = int(text)
    return year(value)


def read_back(text: str) -> str:
    """``text`` with every figure said in words, as a speaker reads it out."""

    def say(match: re.Match[str]) -> str:
        if match.group("period"):
            which = ORDINAL[int(match.group("which")) - 1]
            return (
                f"the {which} {_QUARTER_WORD[match.group('period')]} of "
                f"{_year_words(match.group('pyear'))}"
            )
        if match.group("fiscal"):
            return f"fiscal {_year_words(match.group('fyear'))}"
        if match.group("join"):
            return _range(match)
        return _one(match, "")

    return _READ.sub(say, text)


_NUMBER_WORDS_LEFT = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundred|thousand|million|billion|point|percent|dollars?|cents?|"
    r"euros?|yen|pounds|francs)\b"
)


@st.composite
def _decimal(draw: st.DrawFn, top: int = 999) -> tuple[str, str]:
    """(said, written amount): "sixty one point four five", "61.45"."""
    places = draw(st.integers(0, 2))
    whole = draw(st.integers(0 if places else 1, top))  # "zero million" is not said
    digits = [draw(st.integers(0, 9)) for _ in range(places)]
    if places and digits[-1] == 0:
        digits[-1] = draw(st.integers(1, 9))  # "point five zero" is said "point five"
    said = number_words(whole) + (
        " point " + " ".join(_DIGITS[d] for d in digits) if digits else ""
    )
    return said, f"{whole}" + ("." + "".join(map(str, digits)) if digits else "")


@st.composite
def spoken_figure(draw: st.DrawFn) -> str:
    """A figure as said on a call, in one of the forms an analyst writes."""
    kind = draw(
        st.sampled_from(
            [
                "money",
                "money range",
                "per share",
                "cents range",
                "percent",
                "percent range",
                "decline",
                "basis points",
                "quarter",
                "half",
                "fiscal",
            ]
        )
    )
    currency = draw(st.sampled_from(list(_CURRENCY_WORDS.values())))
    scale = draw(st.sampled_from(["million", "billion"]))
    low = draw(st.integers(1, 998))
    high = draw(st.integers(low + 1, 999))
    between = draw(st.booleans())
    pair = (
        f"between {number_words(low)} and {number_words(high)}"
        if between
        else f"{number_words(low)} to {number_words(high)}"
    )
    when = draw(st.integers(2001, 2039))
    if kind == "money":
        amount, _ = draw(_decimal())
        return f"{amount} {scale} {currency}"
    if kind == "money range":
        return f"{pair} {scale} {currency}"
    if kind == "per share":
        dollars, cents = draw(st.integers(0, 20)), draw(st.integers(1, 99))
        if dollars == 0:
            return f"{number_words(cents)} cent{'' if cents == 1 else 's'} per share"
        plural = "" if dollars == 1 else "s"
        cent = "" if cents == 1 else "s"
        return (
            f"{number_words(dollars)} dollar{plural} and {number_words(cents)} cent{cent} per share"
        )
    if kind == "cents range":
        low, high = draw(st.integers(1, 98)), draw(st.integers(2, 99))
        low, high = min(low, high - 1), max(high, low + 1)
        joined = (
            f"between {number_words(low)} and {number_words(high)}"
            if between
            else f"{number_words(low)} to {number_words(high)}"
        )
        return f"{joined} cents per share"
    if kind == "percent":
        amount, _ = draw(_decimal(99))
        return f"{amount} percent"
    if kind == "percent range":
        small = (draw(st.integers(1, 98)),)
        top = draw(st.integers(small[0] + 1, 99))
        joined = (
            f"between {number_words(small[0])} and {number_words(top)}"
            if between
            else f"{number_words(small[0])} to {number_words(top)}"
        )
        return f"{joined} percent"
    if kind == "decline":
        amount, _ = draw(_decimal(99))
        return f"minus {amount} percent"
    if kind == "basis points":
        if draw(st.booleans()):
            return f"{pair} basis points"
        return f"{number_words(low)} basis point{'' if low == 1 else 's'}"
    if kind == "quarter":
        return f"the {draw(st.sampled_from(ORDINAL))} quarter of {year(when)}"
    if kind == "half":
        return f"the {draw(st.sampled_from(ORDINAL[:2]))} half of {year(when)}"
    return f"fiscal {year(when)}"


@settings(max_examples=120, deadline=None)
@given(
    spoken_figure(),
    st.sampled_from(["Revenue was", "We expect", "Gross margin came in at", "Guidance is"]),
    st.sampled_from(["", " for the year", ", as we said", " this time"]),
)
def test_written_figures_read_back_to_the_words_said(said: str, lead: str, tail: str) -> None:
    """Whatever the normaliser writes, said again, is what was said: no figure changed, and
    none left in words."""
    sentence = f"{lead} {said}{tail}."
    written_as = write_figures(sentence)
    assert not _NUMBER_WORDS_LEFT.search(_READ.sub("", written_as)), written_as
    assert read_back(written_as) == sentence, written_as
