"""The engagement report's figures as the page and the PDF print them: the headline tiles
(registrants, live and replay listeners by channel, questions asked and answered, peak
concurrent, average time live) and the table by channel. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbridge.store.report import Engagement, Heard


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    detail: str = ""


def _m(heard: Heard) -> str:
    return f"{heard.minutes:,.1f}"


def tiles(figures: Engagement) -> list[Tile]:
    """The headline figures, in the order the page and the PDF show them."""
    written = figures.written_questions
    return [
        Tile("Registrants", str(figures.registrations), "for the webcast"),
        Tile(
            "Live listeners",
            str(figures.live.listeners),
            f"{figures.live_phone.listeners} phone · {figures.live_web.listeners} web",
        ),
        Tile(
            "Replay listeners",
            str(figures.replay.listeners),
            f"{figures.replay_phone.listeners} phone · {figures.replay_web.listeners} web",
        ),
        Tile(
            "Questions",
            f"{figures.questions} asked",
            f"{figures.questions_answered} answered · {figures.phone_questions} by phone"
            + ("" if written is None else f" · {written} written"),
        ),
        Tile("Peak concurrent", str(figures.peak_live), "live listeners at once"),
        Tile(
            "Average time live",
            f"{figures.average_live_minutes:.1f} min",
            f"{_m(figures.live)} minutes heard in all",
        ),
    ]


@dataclass(frozen=True)
class FigureRow:
    """One figure by channel; ``None`` where a channel has no such figure (phone
    registrations) or it was not counted (written questions with the form off)."""

    label: str
    phone: float | None
    web: float | None
    total: float
    minutes: bool = False  # minutes heard, printed to a tenth


def figure_rows(figures: Engagement) -> list[FigureRow]:
    """The figures by channel, in the order the page, the PDF and the CSV give them."""
    return [
        FigureRow("Registrations", None, figures.registrations, figures.registrations),
        FigureRow(
            "Live listeners",
            figures.live_phone.listeners,
            figures.live_web.listeners,
            figures.live.listeners,
        ),
        FigureRow(
            "Live minutes heard",
            figures.live_phone.minutes,
            figures.live_web.minutes,
            figures.live.minutes,
            minutes=True,
        ),
        FigureRow(
            "Replay listeners",
            figures.replay_phone.listeners,
            figures.replay_web.listeners,
            figures.replay.listeners,
        ),
        FigureRow(
            "Replay minutes heard",
            figures.replay_phone.minutes,
            figures.replay_web.minutes,
            figures.replay.minutes,
            minutes=True,
        ),
        FigureRow(
            "Listeners live and on the replay",
            figures.both_phone,
            figures.both_web,
            figures.both,
        ),
        FigureRow("Speakers", figures.speakers, None, figures.speakers),
        FigureRow(
            "Questions asked",
            figures.phone_questions,
            figures.written_questions,
            figures.questions,
        ),
    ]


def cell(value: float | None, *, minutes: bool, grouped: bool, missing: str) -> str:
    """A figure as text: minutes to a tenth, counts whole; ``grouped`` adds thousands
    separators (the page and the PDF; a CSV stays plain for spreadsheets)."""
    if value is None:
        return missing
    if minutes:
        return f"{value:,.1f}" if grouped else f"{value:.1f}"
    return f"{int(value):,}" if grouped else str(int(value))


def table_rows(figures: Engagement) -> list[list[str]]:
    """The figures by channel (header first), as the page's table and the PDF's."""
    rows = [["Figure", "Phone", "Web", "Total"]]
    for row in figure_rows(figures):
        values = (row.phone, row.web, row.total)
        rows.append(
            [row.label] + [cell(v, minutes=row.minutes, grouped=True, missing="–") for v in values]
        )
    return rows
