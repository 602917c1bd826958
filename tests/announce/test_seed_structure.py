"""The rendered release has the shape of the real one it imitates.

``data/announcement-2011-q3.txt`` is the ImmunoGen release of April 21, 2011,
as distributed: the sections, their order and their wording are what callbridge
reproduces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from callbridge.announce.render import render_text
from callbridge.events.schema import EventRecord

SEED = Path(__file__).parent / "data" / "announcement-2011-q3.txt"

_DATELINE = re.compile(r"^[A-Z][A-Z .'-]+, .*\b[A-Z][a-z]{2}\.? \d{1,2}, \d{4}\b.*--$")
_CONTACT_GROUP = re.compile(r"^[A-Z][\w /&-]*:$")


def sections(text: str) -> list[str]:
    """Name each block of a plain-text release, merging consecutive blocks of one section."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    names: list[str] = []
    for block in blocks:
        if not names:
            name = "headline"
        elif _DATELINE.match(block):
            name = "dateline"
        elif "today announced that the Company will host a conference call" in block:
            name = "lead"
        elif block.startswith(("To access the live call", "Live call:", "Telephone replay:")):
            name = "access"
        elif block.startswith("SOURCE: "):
            name = "source"
        elif block.startswith("About ") or names[-1] == "about":
            name = "about"
        elif names[-1] in ("source", "contacts"):
            name = "contacts"
        else:
            name = f"unknown: {block[:40]!r}"
        if not names or names[-1] != name:
            names.append(name)
    return names


EXPECTED = ["headline", "dateline", "lead", "access", "about", "source", "contacts"]


def test_the_seed_reads_as_expected() -> None:
    assert sections(SEED.read_text(encoding="utf-8")) == EXPECTED


def test_the_release_has_the_seeds_sections_in_order(northwind: EventRecord) -> None:
    assert sections(render_text(northwind)) == EXPECTED


def test_numbers_in_a_list_stay_in_the_access_section(
    make_record: Callable[..., EventRecord],
) -> None:
    numbers = [{"label": f"Line {i}", "number": f"+1 913-555-01{i:02d}"} for i in range(1, 6)]
    record = make_record(event={"dial_in": numbers, "replay_dial_in": numbers})
    assert sections(render_text(record)) == EXPECTED


def test_the_contact_blocks_open_with_their_group_like_the_seed(northwind: EventRecord) -> None:
    def group_lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if _CONTACT_GROUP.match(line.strip())]

    assert group_lines(SEED.read_text(encoding="utf-8")) == ["Investors:", "Media:"]
    assert group_lines(render_text(northwind)) == ["Investors:", "Media:"]


def test_the_release_keeps_the_seeds_sentences(northwind: EventRecord) -> None:
    seed = SEED.read_text(encoding="utf-8")
    ours = render_text(northwind)
    for phrase in (
        " Announces Conference Call to Discuss its ",
        "today announced that the Company will host a conference call at ",
        "To access the live call by phone, dial ",
        "The call also may be accessed through the Investor Information section of the "
        "Company's website, ",
        "Following the live webcast, a replay of the call will be available at the same "
        "location through ",
        "\nSOURCE: ",
    ):
        assert phrase in seed
        assert phrase in ours
