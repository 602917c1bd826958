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


def table_rows(figures: Engagement) -> list[list[str]]:
    """The figures by channel (header first), as the page's table."""
    written = "n/a" if figures.written_questions is None else str(figures.written_questions)
    return [
        ["Figure", "Phone", "Web", "Total"],
        ["Registrations", "–", str(figures.registrations), str(figures.registrations)],
        [
            "Live listeners",
            str(figures.live_phone.listeners),
            str(figures.live_web.listeners),
            str(figures.live.listeners),
        ],
        [
            "Live minutes heard",
            _m(figures.live_phone),
            _m(figures.live_web),
            _m(figures.live),
        ],
        [
            "Replay listeners",
            str(figures.replay_phone.listeners),
            str(figures.replay_web.listeners),
            str(figures.replay.listeners),
        ],
        [
            "Replay minutes heard",
            _m(figures.replay_phone),
            _m(figures.replay_web),
            _m(figures.replay),
        ],
        [
            "Listeners live and on the replay",
            str(figures.both_phone),
            str(figures.both_web),
            str(figures.both),
        ],
        ["Speakers", str(figures.speakers), "–", str(figures.speakers)],
        ["Questions asked", str(figures.phone_questions), written, str(figures.questions)],
    ]
