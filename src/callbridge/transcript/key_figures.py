"""The key figures of a call: each figure said, what it measures, for which period, and when.

``key_figures`` reads a ``Transcript`` whose figures are written as analysts
write them (``transcript.figures``: "$42 million", "61.4%", "$850 million to
$870 million", "50 basis points", "Q3 2026") and returns a row per figure: what
it measures ("revenue", "gross margin", "EPS", "revenue guidance", "revenue
growth"), its value, its period ("Q3 2026", "fiscal 2027", "full year"), and the
moment in the replay where the sentence that says it begins. The replay page
shows the rows beside the player, each a link to that moment; ``as_text``,
``as_html`` and ``as_csv`` render them for the transcript's documents and
downloads. Pure: a transcript in, rows and text out.

How a row is read, each rule for a reason:

* what it measures is the metric named in the same sentence: right after the
  figure ("$42 million in revenue"), else the nearest before it ("revenue grew
  to $42 million, up 12%"), else the nearest after it; a qualifier said with it
  ("adjusted", "non-GAAP", "diluted") stays with it;
* a percentage or basis points after a word of change ("up 12%", "grew by 8%",
  "declined 3%", "expanded 50 basis points") is the metric's growth (a ratio's
  change), and a fall is written negative ("-3%");
* a sentence that looks ahead ("we expect", "guidance", "outlook") makes the
  metric's guidance;
* an amount per share is EPS unless the sentence names another per-share
  measure (a dividend, a loss);
* the period is the one said nearest the figure in its sentence; without one,
  the last said earlier in the speaker's turn ("Turning to the fourth quarter.
  We expect revenue of ..."). "The quarter" is the first quarter with a year
  said in the call (the call's own quarter), where there was one.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from callbridge.transcript.model import Transcript
from callbridge.transcript.turns import clock, speaker_turns

TITLE = "Key figures"

# -- what is a figure ----------------------------------------------------------------

_AMOUNT = r"\d[\d,]*(?:\.\d+)?"
_SCALE = r"(?: (?:thousand|million|billion|trillion))"
_CURRENCY = r"(?:[A-Z]{1,2}\$|CHF |[$€£¥])"
_MONEY = rf"-?{_CURRENCY}{_AMOUNT}{_SCALE}?"
_PERCENT = rf"[-+]?{_AMOUNT}%"
_POINTS = rf"[-+]?{_AMOUNT} basis points?"
# A range is two figures of one kind: "3% to $18 million" is a change and an amount.
_FIGURE = re.compile(
    r"(?<![\w.])(?:[Bb]etween )?(?:"
    rf"(?P<range>{_MONEY} (?:to|and) {_MONEY}|{_PERCENT} (?:to|and) {_PERCENT}"
    rf"|[-+]?{_AMOUNT}(?: basis points?)? (?:to|and) {_POINTS})"
    rf"|(?P<one>{_MONEY}|{_PERCENT}|{_POINTS})"
    r")(?![\w%])"
)
_PER_SHARE = re.compile(r"^ (?:per|a) (?:diluted )?share\b")

# -- what it measures --------------------------------------------------------------

# (label, pattern), most specific first: "adjusted EBITDA margin" before "EBITDA", before
# "margin". Labels are as an analyst's table heads them.
_METRICS: list[tuple[str, str]] = [
    ("EBITDA margin", r"ebitda margins?"),
    ("EBITDA", r"ebitda"),
    ("gross margin", r"gross (?:profit )?margins?"),
    ("operating margin", r"operating (?:profit )?margins?|ebit margins?"),
    ("net margin", r"net (?:profit )?margins?"),
    ("gross profit", r"gross profits?"),
    ("operating income", r"operating (?:income|profits?)|income from operations|ebit"),
    ("net income", r"net (?:income|profits?|earnings)"),
    ("net loss", r"net loss(?:es)?|loss per share"),
    ("EPS", r"eps|earnings per (?:diluted )?share|earnings of|earnings were|earnings came"),
    ("free cash flow", r"free cash flows?"),
    ("operating cash flow", r"(?:operating cash flows?|cash flows? from operations)"),
    (
        "cash",
        r"cash(?:,? cash equivalents)?(?: and (?:cash )?(?:equivalents|investments|"
        r"marketable securities|short-term investments))?|cash position|cash balance",
    ),
    ("recurring revenue", r"(?:annual |annualized )?recurring revenues?|arr"),
    ("deferred revenue", r"deferred revenues?"),
    ("revenue", r"revenues?|net sales|sales|top line|turnover"),
    ("bookings", r"(?:gross |net )?bookings"),
    ("billings", r"billings"),
    ("backlog", r"backlog|remaining performance obligations|rpo"),
    ("operating expenses", r"operating expenses|opex"),
    ("R&D", r"r&d|research and development"),
    ("capital expenditure", r"capital expenditures?|capex"),
    ("dividend", r"dividends?"),
    ("share repurchases", r"(?:share )?repurchas(?:es?|ed|ing)|buybacks?|bought back"),
    ("debt", r"(?:net |total )?debt"),
    ("tax rate", r"(?:effective )?tax rate"),
    ("net revenue retention", r"net (?:revenue|dollar) retention"),
    ("churn", r"churn"),
    ("margin", r"margins?"),
]
_QUALIFIERS = {q.lower(): q for q in ("adjusted", "non-GAAP", "GAAP", "diluted", "organic", "core")}
_QUALIFIER = rf"(?:(?P<qualifier>{'|'.join(_QUALIFIERS.values())}) )?"
_METRIC = re.compile(
    _QUALIFIER + "(?:" + "|".join(f"(?P<m{i}>{p})" for i, (_, p) in enumerate(_METRICS)) + r")\b",
    re.IGNORECASE,
)
# Measures that are already ratios: their change is a change, not growth.
_RATIOS = {"EBITDA margin", "gross margin", "operating margin", "net margin", "margin"}
_RATIOS |= {"tax rate", "net revenue retention", "churn"}
_RISE = r"up|grew|grow|growth|increased?|increases|rose|expanded|improved|higher|gains?"
_FALL = r"down|declined?|declines|decreased?|decreases|fell|contracted|lower|drop(?:ped)?"
_CHANGE = re.compile(
    rf"\b(?:(?P<rise>{_RISE})|(?P<fall>{_FALL}))(?: (?:by|of))?"
    r"(?: approximately| about| roughly)? $",
    re.IGNORECASE,
)
# Words that look ahead; "better than expected" and "the project" do not.
_AHEAD = re.compile(
    r"\b(?:expects?|expecting|(?<!than )(?<!as )expected|guidance|guiding|guide|outlook|"
    r"forecast(?:s|ing)?|anticipate[sd]?|projected|projecting|targeting)\b",
    re.IGNORECASE,
)

# -- for which period --------------------------------------------------------------

_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_PERIOD = re.compile(
    r"\b(?:(?P<q>Q[1-4])(?: (?P<qyear>(?:19|20)\d\d))?"
    r"|(?P<h>H[12])(?: (?P<hyear>(?:19|20)\d\d))?"
    r"|(?:fiscal(?: year)?|FY) ?(?P<fiscal>(?:19|20)\d\d)"
    r"|full[- ]year(?: (?P<fullyear>(?:19|20)\d\d))?"
    r"|(?P<qword>first|second|third|fourth) quarter"
    r"|(?P<hword>first|second) half"
    r"|(?P<next>next|following) (?P<nextwhat>quarter|year)"
    r"|(?P<thisq>(?:this|the) quarter)(?! (?:of|call))"
    r"|(?P<thisy>(?:this|the) year)(?![- ](?:over|ago|before|earlier))"
    r"|(?:in|for|of) (?P<year>(?:19|20)\d\d)(?![\d,.%])"
    r")\b",
    re.IGNORECASE,
)
# A sentence ends at a stop, question or exclamation mark that a space or the end follows
# ("$1.2 billion" is one sentence).
_SENTENCE = re.compile(r"\S.*?(?:[.?!](?=\s|$)|$)", re.DOTALL)


@dataclass(frozen=True)
class KeyFigure:
    """A figure said in the call: what it measures, its value, its period, and when."""

    what: str | None  # None: the sentence names no measure
    value: str
    period: str | None
    at: float  # seconds into the replay where the sentence that says it begins
    segment: int  # the segment's index in the transcript
    speaker: str | None
    said: str  # the sentence, as written

    @property
    def clock(self) -> str:
        return clock(self.at)

    @property
    def label(self) -> str:
        """What it measures as a table heads it: "Revenue guidance"; "—" for none named."""
        return self.what[0].upper() + self.what[1:] if self.what else "—"

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "value": self.value,
            "period": self.period,
            "time_s": round(self.at, 2),
            "clock": self.clock,
            "segment": self.segment,
            "speaker": self.speaker,
            "said": self.said,
        }


@dataclass(frozen=True)
class _Found:
    label: str
    start: int
    end: int


def _metrics(sentence: str) -> list[_Found]:
    found = []
    for match in _METRIC.finditer(sentence):
        index = next(int(k[1:]) for k, v in match.groupdict().items() if v and k[0] == "m")
        label = _METRICS[index][0]
        qualifier = match.group("qualifier")
        if qualifier and not (qualifier.lower() == "diluted" and label == "EPS"):
            label = f"{_QUALIFIERS[qualifier.lower()]} {label}"
        found.append(_Found(label, match.start(), match.end()))
    return found


def _period_of(match: re.Match[str], quarter: str | None) -> str:
    """A period as the table writes it; ``quarter``: the call's own ("Q3 2026"), if known."""
    groups = match.groupdict()
    if groups["q"]:
        return f"{groups['q'].upper()} {groups['qyear']}" if groups["qyear"] else groups["q"]
    if groups["h"]:
        return f"{groups['h'].upper()} {groups['hyear']}" if groups["hyear"] else groups["h"]
    if groups["fiscal"]:
        return f"fiscal {groups['fiscal']}"
    if groups["qword"]:
        return f"Q{_ORDINAL[groups['qword'].lower()]}"
    if groups["hword"]:
        return f"H{_ORDINAL[groups['hword'].lower()]}"
    if groups["next"]:
        return f"next {groups['nextwhat'].lower()}"
    if groups["thisq"]:
        return quarter or "the quarter"
    if groups["year"]:
        return groups["year"]
    if groups.get("fullyear"):
        return f"full year {groups['fullyear']}"
    return "full year"  # "full year", "this year"


def _nearest_period(sentence: str, at: int, quarter: str | None) -> str | None:
    best: tuple[int, str] | None = None
    for match in _PERIOD.finditer(sentence):
        distance = at - match.end() if match.end() <= at else match.start() - at
        if best is None or abs(distance) < best[0]:
            best = (abs(distance), _period_of(match, quarter))
    return None if best is None else best[1]


def _what(sentence: str, start: int, end: int, metrics: list[_Found]) -> _Found | None:
    """The measure a figure at ``start``:``end`` of ``sentence`` is a value of."""
    after = [m for m in metrics if m.start >= end]
    if after and re.fullmatch(r"\s*(?:of |in |for )?(?:the )?", sentence[end : after[0].start]):
        return after[0]
    before = [m for m in metrics if m.end <= start]
    if before:
        return before[-1]
    return after[0] if after else None


def _row_value(match: re.Match[str]) -> str:
    if match.group("one"):
        return match.group("one")
    return match.group("range").replace(" and ", " to ")


def _sentences(text: str) -> Iterable[tuple[int, str]]:
    for match in _SENTENCE.finditer(text):
        if match.group(0).strip():
            offset = match.start() + len(match.group(0)) - len(match.group(0).lstrip())
            yield offset, match.group(0).strip()


def _call_quarter(transcript: Transcript) -> str | None:
    """The first quarter said with its year: the call's own, as the operator opens it."""
    for segment in transcript.segments:
        found = re.search(r"\b(Q[1-4] (?:19|20)\d\d)\b", segment.text)
        if found:
            return found.group(1)
    return None


def _figures_in(
    sentence: str, quarter: str | None, earlier: str | None
) -> Iterable[tuple[str | None, str, str | None]]:
    """(what, value, period) of each figure in one sentence."""
    metrics = _metrics(sentence)
    ahead = bool(_AHEAD.search(sentence))
    for match in _FIGURE.finditer(sentence):
        value = _row_value(match)
        found = _what(sentence, match.start(), match.end(), metrics)
        what = found.label if found else None
        before = sentence[: match.start()]
        change = _CHANGE.search(before)
        is_ratio_figure = "%" in value or "basis point" in value
        if _PER_SHARE.match(sentence[match.end() :]) or (what and "per share" in sentence.lower()):
            if what is None or what in ("net income", "revenue") or what.endswith("EPS"):
                what = what if what and what.endswith("EPS") else "EPS"
            elif what.endswith("net loss"):
                what = what.replace("net loss", "loss per share")
            elif what.endswith("dividend"):
                what = f"{what} per share"
        if change and is_ratio_figure and what is not None:
            base = what.removeprefix("organic ").removeprefix("adjusted ")
            ratio = base in _RATIOS or "basis point" in value
            what = f"{what} change" if ratio else f"{what} growth"
            if change.group("fall") and not value.startswith("-") and match.group("one"):
                value = f"-{value.lstrip('+')}"
        if ahead:
            what = f"{what} guidance" if what else "guidance"
        period = _nearest_period(sentence, match.start(), quarter) or earlier
        yield what, value, period


def key_figures(transcript: Transcript) -> list[KeyFigure]:
    """Every figure said in ``transcript``, in the order said."""
    quarter = _call_quarter(transcript)
    rows: list[KeyFigure] = []
    for turn in speaker_turns(transcript):
        # The last period said in this turn, apart for the outlook and for results: a
        # dividend declared after the guidance for fiscal 2027 is not fiscal 2027's.
        earlier: dict[bool, str | None] = {True: None, False: None}
        for index in turn.segments:
            segment = transcript.segments[index]
            text = segment.text
            length = max(1, len(text))
            for offset, sentence in _sentences(text):
                # Where the sentence begins, in proportion to its place in the segment.
                at = segment.start + (segment.end - segment.start) * offset / length
                ahead = bool(_AHEAD.search(sentence))
                for what, value, period in _figures_in(sentence, quarter, earlier[ahead]):
                    rows.append(
                        KeyFigure(what, value, period, at, index, segment.speaker, sentence)
                    )
                said = _nearest_period(sentence, len(sentence), quarter)
                if said is not None:
                    earlier[ahead] = said
    rows.sort(key=lambda row: (row.at, row.segment))
    return rows


# -- as documents show them ----------------------------------------------------------

# The table's columns, as every document heads them.
HEAD = ("Time", "What", "Value", "Period")


def cells(row: KeyFigure) -> tuple[str, str, str, str]:
    """A row as a document's table shows it, in ``HEAD``'s order (for DOCX and PDF tables)."""
    return (row.clock, row.label, row.value, row.period or "")


def as_text(rows: list[KeyFigure], title: str = TITLE) -> str:
    """The rows as a plain-text table under ``title`` (for transcript.txt); "" without rows."""
    if not rows:
        return ""
    table = [HEAD, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEAD))]
    lines = [title, ""]
    for line in table:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    return "\n".join(lines) + "\n"


def as_html(
    rows: list[KeyFigure],
    title: str = TITLE,
    link: Callable[[KeyFigure], str] | None = None,
    heading: str = "h2",
) -> str:
    """The rows as an HTML section with a table (for transcript.html); "" without rows.

    ``link`` gives each row's time a link (the replay at that moment); without it
    the time is plain text, as a document read apart from the page has it.
    """
    if not rows:
        return ""
    parts = [
        f'<section class="key-figures"><{heading}>{html.escape(title)}</{heading}>',
        "<table><thead><tr>",
        *(f'<th scope="col">{name}</th>' for name in HEAD),
        "</tr></thead><tbody>",
    ]
    for row in rows:
        time = html.escape(row.clock)
        if link is not None:
            time = f'<a href="{html.escape(link(row))}">{time}</a>'
        _, what, value, period = (html.escape(cell) for cell in cells(row))
        parts.append(f"<tr><td>{time}</td><td>{what}</td><td>{value}</td><td>{period}</td></tr>")
    parts.append("</tbody></table></section>")
    return "".join(parts)


CSV_HEAD = ("time_s", "time", "what", "value", "period", "speaker", "segment", "said")


def as_csv(rows: list[KeyFigure]) -> str:
    """The rows as CSV, a header first (a download an analyst opens in a spreadsheet)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEAD)
    for row in rows:
        writer.writerow(
            [
                f"{row.at:.2f}",
                row.clock,
                row.what or "",
                row.value,
                row.period or "",
                _spreadsheet_safe(row.speaker or ""),
                row.segment,
                _spreadsheet_safe(row.said),
            ]
        )
    return out.getvalue()


def _spreadsheet_safe(cell: str) -> str:
    """``cell`` that a spreadsheet will not run as a formula (said words are anyone's)."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
