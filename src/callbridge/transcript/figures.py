"""Figures as an analyst writes them: "$42 million", "12%", "$0.31 per share", "Q3 2026".

Call ``write_figures`` on an engine's text, before the glossary is applied.
Spoken numbers become figures through WeTextProcessing's English inverse text
normalisation (the ``wetext`` package: grammars compiled to OpenFST files
that it ships, run by ``kaldifst``; nothing to compile here). A few rules of
our own then finish what it leaves, each for a reason:

* engines already write some figures as digits ("94 million dollars",
  "31 cents"), which the grammars do not touch: those get the same form;
* the grammars write "12 %" and "$42 million ," with spaces;
* they write ordinals as digits, but a transcript reads "third quarter",
  "first question" (a date keeps "May 5th");
* "850 to $870 million" is written "$850 million to $870 million" (in any currency,
  "one to €2 billion" too, and "31 to $0.35" as "$0.31 to $0.35"); "between fifty and
  sixty million dollars", which the grammars read as one number "5060", is said "to" for
  them and written "between $50 million and $60 million";
* "Q three" (the grammars make "Q32,026" of "Q three twenty twenty six"), "a hundred
  million dollars" and "a dollar twenty" are put as the grammars read them first;
* currencies the grammars do not mark: "C$42 million", "CHF 42 million", "£120 million"
  (millions of pounds, unless they are pounds *of* something), small numbers of basis
  points ("5 basis points", "bips"), and fiscal years said by two digits ("fiscal 2027");
* "in the third quarter of twenty twenty six" gives "in the Q3 2026": "in Q3 2026";
* integers of five digits and more get thousands separators (four digits
  may be a year).

Hyphens between number words ("sixty-one", as Moonshine writes them) are made
spaces first: the grammars read "sixty-one point four" as "sixty-one .4".
Engines write a digit after "point" as its homophone now and then ("one point
to billion dollars", "sixty-one points for percent"): where a scale, "percent"
or "dollars" follows, nothing else can be meant, so those are put right first,
and "points" between numbers is read as "point"; a year written half in digits
("20 twenty-five") is read as said.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

MAX_CHARS = 600  # the grammars slow down sharply on long inputs: longer text goes by sentence

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "billion",
]
_NUMBER_WORD = "|".join(_UNITS)
_HYPHENATED = re.compile(
    rf"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)-({_NUMBER_WORD}|first|second|"
    r"third|fourth|fifth|sixth|seventh|eighth|ninth)\b",
    re.IGNORECASE,
)
# Two or more number words in a row, in any case: engines now and then write "Forty Two
# Million Dollars", which the grammars (lower case only) would leave as words.
_NUMBER_RUN = re.compile(
    rf"\b(?:(?:{_NUMBER_WORD}|point|dollars?|percent|cents?)\b[ -]?){{2,}}", re.IGNORECASE
)
# "point to billion", "points for percent": a homophone of a digit after "point" where a
# figure's unit follows (an engine's "a" before the scale is dropped too).
_POINT_HOMOPHONE = re.compile(
    rf"\b((?:{_NUMBER_WORD})|\d+)[ -]points?,? (to|too|for)(?: a)? "
    r"(?=(?:thousand|million|billion|percent|per ?cent|dollars?)\b)",
    re.IGNORECASE,
)
# "20 twenty-five": a year's first half written in digits, its second in words (an engine's).
_YEAR_HALF = re.compile(
    r"\b(19|20)[ -](?=(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|"
    r"nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)\b)",
    re.IGNORECASE,
)
_HOMOPHONE_DIGIT = {"to": "two", "too": "two", "for": "four"}
_WORD_RUN = rf"(?:{_NUMBER_WORD})(?:[ -](?:{_NUMBER_WORD}|point))*"
_SAID_UNIT = (
    r"(?:per ?cent|percent|dollars?|cents?|euros?|yen|pounds?|thousand|million|billion|"
    r"trillion|basis points?)"
)
# What a speaker says that the grammars misread, put as they read it (each undone or
# finished by a rule after them):
_SAID: list[tuple[re.Pattern[str], str]] = [
    # "Q three twenty twenty six": the grammars make "Q32,026" of it.
    (re.compile(r"\bQ[ -]?(one|two|three|four)\b", re.IGNORECASE), "Q"),
    # "between fifty and sixty million dollars": the grammars read "fifty and sixty" as one
    # number ("5060"); said "to", and "between ... and" again after them. Not where the
    # first ends in "hundred" or "thousand" and the second has no such word: "between one
    # hundred and fifty million" is 150 million.
    (
        re.compile(rf"\bbetween ({_WORD_RUN}) and (?=({_WORD_RUN}) {_SAID_UNIT}\b)", re.IGNORECASE),
        "between",
    ),
    # "a hundred million dollars", "a dollar twenty": "a" for "one", where a unit follows.
    (
        re.compile(
            rf"\ba (?=(?:hundred|thousand|million|billion)(?:[ -](?:{_NUMBER_WORD}|point))* "
            rf"(?:per ?cent|percent|dollars?|euros?|yen|pounds?)\b)",
            re.IGNORECASE,
        ),
        "a",
    ),
    (re.compile(rf"\ba (?=dollar (?:and )?(?:{_NUMBER_WORD})\b)", re.IGNORECASE), "a"),
]
_Q_DIGIT = {"one": "1", "two": "2", "three": "3", "four": "4"}


def _said(match: re.Match[str], rule: str) -> str:
    if rule == "Q":
        return f"Q{_Q_DIGIT[match.group(1).lower()]}"
    if rule == "between":
        first, second = match.group(1).lower(), match.group(2).lower()
        if re.search(r"(?:hundred|thousand)$", first) and not re.search(
            r"\b(?:hundred|thousand)\b", second
        ):
            return match.group(0)
        return f"{match.group(0)[: -len(' and ')]} to "
    return "one "


# "sixty one points four", "five points, five million": the decimal point, as said.
_POINTS = re.compile(
    rf"\b((?:{_NUMBER_WORD})|\d+) points?,? (?=(?:{_NUMBER_WORD})\b|\d)", re.IGNORECASE
)
# An engine that hears a figure's words one by one (a speaker reading a table, words
# recorded apart) writes a stop or a comma between them: "six hundred. Seventy seven.
# Million dollars." Inside a figure those marks say nothing, and they keep the grammars
# from reading one number; they go where nothing else can be meant: before a scale,
# between tens and units that a scale, "dollars" or "percent" follows, and after
# "hundred" before its tens and units that such a word follows.
_SMALL = "one|two|three|four|five|six|seven|eight|nine"
# Dollars other than the US dollar, as analysts mark them.
_DOLLARS = {
    "Canadian": "C$",
    "Australian": "A$",
    "New Zealand": "NZ$",
    "Hong Kong": "HK$",
    "Singapore": "S$",
}
_BELOW_HUNDRED = (
    f"{_SMALL}|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|"
    "nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
)
_MARK = r"[.,;]\s+"
_UNIT_WORD = r"(?:thousand|million|billion|dollars?|percent|per cent)"
# In this order: a scale joins its number first, then tens and units, then "hundred"
# its tens and units where a scale or unit follows them ("two hundred, ten of them" stays).
_SPLIT_FIGURE = [
    re.compile(
        rf"\b({_BELOW_HUNDRED}|hundred){_MARK}(?=(?:thousand|million|billion|percent|per cent)\b)",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety){_MARK}"
        rf"(?=(?:{_SMALL}) {_UNIT_WORD}\b)",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(hundred){_MARK}(?=(?:{_BELOW_HUNDRED})(?:,? (?:{_SMALL}))? {_UNIT_WORD}\b)",
        re.IGNORECASE,
    ),
]
# A decimal point the engine wrote a stop after ("sixty one point. Four percent"): a
# sentence that ends on "point" and a next one that starts with a number and its unit
# is a figure read slowly, so the stop goes; without the unit after it, it stays.
_POINT_STOP = re.compile(
    rf"\b((?:{_NUMBER_WORD})|\d+) point\.\s+(?=(?:(?:{_NUMBER_WORD})|\d+)(?: {_UNIT_WORD}\b|%))",
    re.IGNORECASE,
)
# One word a figure is said in: a number in digits or words, or its scale or unit.
_FIGURE_WORD = re.compile(
    rf"\d+|{_NUMBER_WORD}|trillion|point|dollars?|cents?|percent|per|cent|basis|points?"
)


def is_figure_word(word: str) -> bool:
    """Whether ``word`` (lower case, no punctuation) is one a figure is said in."""
    return _FIGURE_WORD.fullmatch(word) is not None


# "was 31" or "was thirty one", and "cents and we ended": a figure's unit past the cut.
_FIGURE_END = re.compile(rf"(?:\d|\b(?:{_NUMBER_WORD}|hundred))$", re.IGNORECASE)
_UNIT_START = re.compile(rf"(?:{_UNIT_WORD}|cents?|basis points?|bps)\b", re.IGNORECASE)
_ORDINALS = {
    1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth",
    6: "sixth", 7: "seventh", 8: "eighth", 9: "ninth", 10: "tenth",
}  # fmt: skip
_QUARTER = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "1st": 1,
    "2nd": 2,
    "3rd": 3,
    "4th": 4,
}
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_AMOUNT = r"\d[\d,]*(?:\.\d+)?"
_SCALE = r"thousand|million|billion|trillion"
_CURRENCY = r"(?:[A-Z]{1,2}\$|CHF |[$€£¥])"


class _Normalizer(Protocol):
    def normalize(self, text: str) -> str: ...


@functools.cache
def _grammar() -> _Normalizer | None:
    """WeTextProcessing's English inverse normaliser, loaded once (about a second)."""
    try:
        from wetext import Normalizer
    except ImportError:
        log.warning("wetext is not installed: spoken figures stay as the engine wrote them")
        return None
    normalizer: _Normalizer = Normalizer(lang="en", operator="itn")
    return normalizer


def _ordinal_word(match: re.Match[str]) -> str:
    return _ORDINALS.get(int(match.group(1)), match.group(0))


def _cents(match: re.Match[str]) -> str:
    return f"${int(match.group(1)) / 100:.2f}"


_SMALL_WORDS = "|".join(_UNITS[:28])  # zero to ninety: one word each


def _small_number(said: str) -> str:
    """A figure, or one number word from zero to ninety, as digits."""
    lowered = said.lower()
    if lowered in _UNITS[:20]:
        return str(_UNITS.index(lowered))
    if lowered in _UNITS[20:28]:
        return str(20 + 10 * (_UNITS.index(lowered) - 20))
    return said


def _dollars(match: re.Match[str], amount: int, scale: int) -> str:
    scaled = match.group(scale)
    return f"${match.group(amount)}" + (f" {scaled}" if scaled else "")


def _thousands(match: re.Match[str]) -> str:
    return f"{int(match.group(0)):,}"


_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # Spaces the grammars leave before punctuation and percent signs.
    (re.compile(r"(?<=\d) ?(?:%|per ?cent\b|percent\b)", re.IGNORECASE), "%"),
    (re.compile(r" +([.,;:?!])"), r"\1"),
    # Figures the engine wrote as digits; a dollar sign said twice ("$94 million dollars",
    # the sign written and the word said) once.
    (re.compile(rf"\$({_AMOUNT})(?: ({_SCALE}))? dollars?\b"), lambda m: _dollars(m, 1, 2)),
    (re.compile(rf"(?<![$\d.,])\b({_AMOUNT}) ({_SCALE}) dollars?\b"), r"$\1 \2"),
    (re.compile(rf"(?<![$\d.,])\b({_AMOUNT}) dollars?\b"), r"$\1"),
    (re.compile(r"(?<![$\d.,])\b(\d{1,2}) cents?\b"), _cents),
    # Other dollars, and francs: as an analyst marks them ("C$42 million", "CHF 42 million").
    (
        re.compile(
            rf"(?<![\d.,])\b({_AMOUNT})(?: ({_SCALE}))? ({'|'.join(_DOLLARS)}) dollars?\b",
            re.IGNORECASE,
        ),
        lambda m: (
            f"{_DOLLARS[m.group(3).title()]}{m.group(1)}" + (f" {m.group(2)}" if m.group(2) else "")
        ),
    ),
    (
        re.compile(rf"(?<![\d.,])\b({_AMOUNT})(?: ({_SCALE}))? Swiss francs?\b", re.IGNORECASE),
        lambda m: f"CHF {m.group(1)}" + (f" {m.group(2)}" if m.group(2) else ""),
    ),
    # Pounds sterling, said so (plain "pounds" may be weight): "£120 million".
    (
        re.compile(
            rf"\b({_AMOUNT})(?: ({_SCALE}))? (?:pounds? sterling|British pounds?)\b",
            re.IGNORECASE,
        ),
        lambda m: f"£{m.group(1)}" + (f" {m.group(2)}" if m.group(2) else ""),
    ),
    # Millions of pounds are money, unless they are pounds of something ("of copper").
    (
        re.compile(rf"(?<![\d.,])\b({_AMOUNT}) ({_SCALE}) pounds\b(?! (?:of|per)\b)"),
        r"£\1 \2",
    ),
    # A range in one currency and scale: "$850 to $870 million", "one to €2 billion".
    (
        re.compile(
            rf"({_CURRENCY})?(?<![\d.])\b({_AMOUNT}|{_SMALL_WORDS}) to ({_CURRENCY})({_AMOUNT}) "
            rf"({_SCALE})\b",
            re.IGNORECASE,
        ),
        lambda m: (
            (
                f"{m.group(3)}{_small_number(m.group(2))} {m.group(5)} to "
                f"{m.group(3)}{m.group(4)} {m.group(5)}"
            )
            if m.group(1) in (None, m.group(3))
            else m.group(0)
        ),
    ),
    # A range of cents: "31 to $0.35 per share".
    (
        re.compile(rf"(?<![\d.$])\b(\d{{1,2}}|{_SMALL_WORDS}) to \$0\.(\d\d)\b", re.IGNORECASE),
        lambda m: f"${int(_small_number(m.group(1))) / 100:.2f} to $0.{m.group(2)}",
    ),
    # A range of percentages: the grammars leave a lone small number as a word ("three
    # to 5%"); an analyst writes "3% to 5%".
    (
        re.compile(rf"(?<![\d.$])\b({_AMOUNT}|{_SMALL_WORDS}) to ({_AMOUNT})%", re.IGNORECASE),
        lambda m: f"{_small_number(m.group(1))}% to {m.group(2)}%",
    ),
    # "58 points 2%": an engine's plural of "point" in a decimal.
    (re.compile(r"\b(\d+) points? (\d)%"), r"\1.\2%"),
    # "the third quarter on 2026" (an engine's "of"), "third quarter 2026": as the grammar
    # writes "the third quarter of 2026".
    (
        re.compile(
            r"\b(first|second|third|fourth|1st|2nd|3rd|4th) quarter (?:of |on |in )?(\d{4})\b",
            re.IGNORECASE,
        ),
        lambda m: f"Q{_QUARTER[m.group(1).lower()]} {m.group(2)}",
    ),
    # "the Q3 2026", "the H1 2026": the grammar replaced "third quarter of" ("first half
    # of") but kept the article.
    (re.compile(r"\b[Tt]he ([QH][1-4] \d{4})\b"), r"\1"),
    # "fiscal twenty seven": a fiscal year said by its last two digits.
    (
        re.compile(r"\b([Ff]iscal(?: year)?) (\d\d)\b(?![\d.,%]| (?:thousand|million|billion))"),
        r"\1 20\2",
    ),
    # Basis points as engines write them.
    (re.compile(r"(?<=\d) (?:bips|bps|BPS)\b"), " basis points"),
    # Basis points in a small number, which the grammars leave as a word: "5 basis points".
    (
        re.compile(rf"(?<![\w.$-])({_SMALL_WORDS}) basis (points?)\b", re.IGNORECASE),
        lambda m: f"{_small_number(m.group(1))} basis {m.group(2)}",
    ),
    (
        re.compile(
            rf"(?<![\w.$-])({_SMALL_WORDS}) (to|and) (?=\d[\d,.]* basis points\b)", re.IGNORECASE
        ),
        lambda m: f"{_small_number(m.group(1))} {m.group(2)} ",
    ),
    # "between fifty to sixty million dollars": "between ... and", as said (see _SAID).
    (
        re.compile(
            rf"\b([Bb]etween -?{_CURRENCY}?{_AMOUNT}(?: (?:{_SCALE}))?%?) to (?=-?{_CURRENCY}?\d)"
        ),
        r"\1 and ",
    ),
    # Integers of five digits or more (not decimals or money already grouped).
    (re.compile(r"(?<![\d.,])\d{5,}(?![\d.,]\d)"), _thousands),
]
# Ordinals back to words, except a date's day ("May 5th").
_ORDINAL = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)\b")
_DATE_DAY = re.compile(rf"\b(?:{_MONTHS}) \d{{1,2}}(?:st|nd|rd|th)\b")


def _ordinals_as_words(text: str) -> str:
    dates = [m.span() for m in _DATE_DAY.finditer(text)]

    def replace(match: re.Match[str]) -> str:
        if any(a <= match.start() < b for a, b in dates):
            return match.group(0)
        return _ordinal_word(match)

    return _ORDINAL.sub(replace, text)


# A double quote makes the grammars' tagger assert, and the whole sentence around it then
# keeps its figures as words (an engine quoting a phrase cost "Q2 2026" in the bench).
# So the text between such symbols is normalised run by run, the symbols kept as they are.
_UNSAFE = re.compile(r"[^\w\s.,;:?!'%$()\-]+")


def _normalised_run(grammar: _Normalizer, text: str, *, first: bool, last: bool) -> str:
    """``text`` (no unsafe characters) normalised; spaces beside a kept symbol stay."""
    body = text.strip()
    if not body:
        return "" if first or last else text
    try:
        done = grammar.normalize(body)
    except Exception:  # its tagger asserts on some inputs ("0\\"): keep the words as said
        log.debug("no figures written in %r", body, exc_info=True)
        done = body
    left = "" if first else text[: len(text) - len(text.lstrip())]
    right = "" if last else text[len(text.rstrip()) :]
    return left + done + right


def _normalised(grammar: _Normalizer, text: str) -> str:
    """``text`` normalised run by run between the characters the grammars mishandle."""
    parts: list[str] = []
    at = 0
    for match in _UNSAFE.finditer(text):
        parts.append(_normalised_run(grammar, text[at : match.start()], first=at == 0, last=False))
        parts.append(match.group(0))
        at = match.end()
    parts.append(_normalised_run(grammar, text[at:], first=at == 0, last=True))
    return "".join(parts)


def _sentences(text: str) -> list[str]:
    """``text`` in parts of at most ``MAX_CHARS``, cut after sentences (or words)."""
    parts: list[str] = []
    current = ""
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        while len(sentence) > MAX_CHARS:
            cut = sentence.rfind(" ", 0, MAX_CHARS)
            cut = cut if cut > 0 else MAX_CHARS
            parts.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if current and len(current) + 1 + len(sentence) > MAX_CHARS:
            parts.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        parts.append(current)
    return parts


def continues_figure(left: str, right: str) -> bool:
    """Whether ``right`` goes on with the figure that ``left`` ends with: an engine gave
    "Six hundred." and "Seventy seven million dollars." as two segments."""
    head = left.rstrip(" .,;")
    probe = f"{head}. {right.lstrip()}"
    if _FIGURE_END.search(head) and _UNIT_START.match(right.lstrip()):
        return True
    # "Sixty one point." and "Four percent of sales.": a decimal read across the cut.
    if any(m.start() < len(head) < m.end() for m in _POINT_STOP.finditer(probe)):
        return True
    return any(
        match.end(1) == len(head) for split in _SPLIT_FIGURE for match in split.finditer(probe)
    )


# The figure a text ends with, as said or as digits: "was two hundred", "was $2.1".
_FIGURE_TAIL = re.compile(
    rf"(?:(?:\$?\d[\d,.]*%?|\b(?:{_NUMBER_WORD}|hundred|point)\b)[\s,-]*)+[.;]?\s*$",
    re.IGNORECASE,
)


def figure_tail(text: str) -> int:
    """Where the figure that ``text`` ends with starts (``len(text)`` when it ends with none)."""
    match = _FIGURE_TAIL.search(text)
    return match.start() if match else len(text)


def write_figures(text: str) -> str:
    """``text`` with spoken numbers, money, percentages, quarters and years as figures.

    Words that are not figures are left as they are; "one of our customers"
    keeps its "one". Without ``wetext`` installed only the rules for figures
    the engine already wrote as digits apply.
    """
    if not text.strip():
        return text
    text = _POINT_HOMOPHONE.sub(
        lambda m: f"{m.group(1)} point {_HOMOPHONE_DIGIT[m.group(2).lower()]} ", text
    )
    text = _POINT_STOP.sub(r"\1 point ", text)
    text = _POINTS.sub(r"\1 point ", text)
    for said, rule in _SAID:
        text = said.sub(functools.partial(_said, rule=rule), text)
    text = _YEAR_HALF.sub(lambda m: "nineteen " if m.group(1) == "19" else "twenty ", text)
    for split in _SPLIT_FIGURE:
        text = split.sub(r"\1 ", text)
    text = _NUMBER_RUN.sub(lambda match: match.group(0).lower(), text)
    # Twice: "twenty-twenty-five" (a year, as Moonshine writes it) overlaps itself.
    text = _HYPHENATED.sub(r"\1 \2", _HYPHENATED.sub(r"\1 \2", text))
    grammar = _grammar()
    if grammar is not None:
        text = " ".join(_normalised(grammar, part) for part in _sentences(text))
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return _ordinals_as_words(text)
