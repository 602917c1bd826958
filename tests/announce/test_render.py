"""The release in text, HTML and Markdown: every field, in every format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from callbridge.announce.render import (
    MEDIA_TYPES,
    Format,
    hosted_webcast_url,
    markdown_escape,
    possessive,
    render,
    render_html,
    render_markdown,
    render_text,
    short_name,
)
from callbridge.events.phones import dial_in_display
from callbridge.events.schema import EventRecord
from tests.announce.conftest import NOW
from tests.announce.formats import html_text, markdown_text, plain_text, read_page

MakeRecord = Callable[..., EventRecord]
Reader = Callable[[EventRecord], str]

READERS: dict[str, Reader] = {
    "text": lambda r: plain_text(render_text(r)),
    "html": lambda r: html_text(render_html(r)),
    "md": lambda r: markdown_text(render_markdown(r)),
}

HEADLINE = (
    "Northwind Biologics, Inc. Announces Conference Call to Discuss its "
    "Third Quarter Fiscal Year 2026 Financial Results"
)
LEAD = (
    "Northwind Biologics, Inc. (Nasdaq: NWBX) today announced that the Company will host a "
    "conference call at 4:30 p.m. ET on Thursday, November 5, 2026, to discuss Northwind "
    "Biologics' financial results for the three-month period ended September 30, 2026."
)
ACCESS = (
    "To access the live call by phone, dial 866-555-0199 (U.S./Canada) or +1 913-555-0123 "
    "(International) and enter passcode 8024721. The call also may be accessed through the "
    "Investor Information section of the Company's website, https://www.northwind.example. "
    "Following the live webcast, a replay of the call will be available at the same location "
    "through November 12, 2026. A telephone replay will be available through November 12, 2026 "
    "by dialing 866-555-0188 (passcode 4417)."
)
ABOUT = (
    "Northwind Biologics, Inc. develops targeted biologic therapies for solid tumours, "
    "combining antibody engineering with its proprietary conjugation chemistry. The Company's "
    "lead candidate, NWB-201, is in Phase II testing. More information about Northwind "
    "Biologics can be found at www.northwind.example."
)


@pytest.fixture(params=sorted(READERS))
def read(request: pytest.FixtureRequest) -> Reader:
    """The release as a reader sees it, one block a line, in each format in turn."""
    return READERS[request.param]


def lines(read: Reader, record: EventRecord) -> list[str]:
    return read(record).splitlines()


# --- The example, field by field ------------------------------------------------


def test_the_example_reads_like_the_seed(read: Reader, northwind: EventRecord) -> None:
    assert lines(read, northwind) == [
        HEADLINE,
        "CAMBRIDGE, Mass., Oct 29, 2026 --",
        LEAD,
        ACCESS,
        "About Northwind Biologics, Inc.",
        ABOUT,
        "SOURCE: Northwind Biologics, Inc.",
        "Investors:",
        "Northwind Biologics, Inc.",
        "Dana Whitfield, 617-555-0142",
        "Director, Investor Relations",
        "ir@northwind.example",
        "or",
        "Media:",
        "Ortiz Communications",
        "Sam Ortiz, 617-555-0177",
    ]


def test_headline_comes_first(read: Reader, northwind: EventRecord) -> None:
    assert lines(read, northwind)[0] == HEADLINE


def test_dateline_uses_the_announcement_date(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(company={"city": "WALTHAM, Mass."}, event={"announced_on": "2026-10-01"})
    assert lines(read, record)[1] == "WALTHAM, Mass., Oct 1, 2026 --"


def test_a_single_number_prints_like_the_seed(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(event={"dial_in": [{"label": "Toll", "number": "+1 913-555-0123"}]})
    text = read(record)
    assert "To access the live call by phone, dial 913-555-0123. Passcode: 8024721." in text
    assert "Toll" not in text


def test_three_numbers_in_one_sentence(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(
        event={
            "dial_in": [
                {"label": "U.S./Canada", "number": "+1 866-555-0199"},
                {"label": "International", "number": "+1 913-555-0123"},
                {"label": "United Kingdom", "number": "+44 20 7946 0999"},
            ]
        }
    )
    assert (
        "dial 866-555-0199 (U.S./Canada), +1 913-555-0123 (International) or "
        "+44 20 7946 0999 (United Kingdom) and enter passcode 8024721."
    ) in read(record)


def test_many_numbers_go_in_a_list(read: Reader, make_record: MakeRecord) -> None:
    numbers = [
        {"label": "U.S./Canada", "number": "+1 866-555-0199"},
        {"label": "International", "number": "+1 913-555-0123"},
        {"label": "United Kingdom", "number": "+44 20 7946 0999"},
        {"label": "Germany", "number": "+49 30 901820"},
    ]
    record = make_record(event={"dial_in": numbers, "replay_dial_in": numbers})
    found = lines(read, record)
    assert (
        "To access the live call by phone, dial one of the numbers listed below and enter "
        "passcode 8024721."
    ) in found[3]
    assert "by dialing one of the replay numbers listed below (passcode 4417)." in found[3]
    # The list marker is "- " in text and Markdown, a <li> in HTML.
    found = [line.removeprefix("- ") for line in found]
    live = found.index("Live call:")
    assert found[live + 1 : live + 5] == [
        "U.S./Canada: 866-555-0199",
        "International: +1 913-555-0123",
        "United Kingdom: +44 20 7946 0999",
        "Germany: +49 30 901820",
    ]
    replay = found.index("Telephone replay:")
    assert found[replay + 1 : replay + 5] == found[live + 1 : live + 5]
    assert replay < found.index("About Northwind Biologics, Inc.")


def test_webcast_url_replaces_the_website_sentence(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(event={"webcast_url": "https://events.example/nwbx/q3?ref=pr&lang=en"})
    text = read(record)
    assert (
        "A live webcast of the call will be available at "
        "https://events.example/nwbx/q3?ref=pr&lang=en."
    ) in text
    assert "Investor Information section" not in text
    assert "a replay of the call will be available at the same location through" in text


def test_without_a_web_address_no_sentence_points_at_one(
    read: Reader, make_record: MakeRecord
) -> None:
    data: dict[str, Any] = {"website": None}
    record = make_record(company=data)
    text = read(record)
    assert "website" not in text
    assert "same location" not in text
    assert "A telephone replay will be available through November 12, 2026" in text


def test_replay_by_phone_with_several_numbers(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(
        event={
            "replay_dial_in": [
                {"label": "U.S./Canada", "number": "+1 866-555-0188"},
                {"label": "International", "number": "+1 913-555-0111"},
            ]
        }
    )
    assert (
        "A telephone replay will be available through November 12, 2026 by dialing "
        "866-555-0188 (U.S./Canada) or +1 913-555-0111 (International) and entering passcode 4417."
    ) in read(record)


def test_no_replay_no_replay_sentences(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(event={"replay_until": None, "replay_dial_in": []})
    text = read(record)
    assert "replay" not in text
    assert "4417" not in text


def test_replay_phone_without_an_end_date(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(event={"replay_until": None})
    text = read(record)
    assert "A telephone replay will be available by dialing 866-555-0188 (passcode 4417)." in text
    assert "same location" not in text


def test_speaker_passcode_is_never_printed(read: Reader, make_record: MakeRecord) -> None:
    # The example's own speaker code, 5550123, is also the tail of 913-555-0123:
    # a code no number contains shows a leak unambiguously.
    record = make_record(event={"speaker_passcode": "97310864"})
    assert "97310864" not in read(record)
    for raw in (render_text(record), render_html(record), render_markdown(record)):
        assert "97310864" not in raw


def test_contacts_print_grouped_in_file_order(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(
        contacts=[
            {"group": "Media", "name": "Sam Ortiz", "phone": "+1 617-555-0177"},
            {"group": "Investors", "name": "Dana Whitfield", "email": "ir@northwind.example"},
            {"group": "Media", "name": "Lee Park", "title": "Press Officer"},
            {"group": "Investors", "name": "Ari Cohen", "organization": "Northwind"},
        ]
    )
    found = lines(read, record)
    contacts = found[found.index("SOURCE: Northwind Biologics, Inc.") + 1 :]
    assert contacts == [
        "Media:",
        "Sam Ortiz, 617-555-0177",
        "Lee Park",
        "Press Officer",
        "or",
        "Investors:",
        "Dana Whitfield",
        "ir@northwind.example",
        "Northwind",
        "Ari Cohen",
    ]


def test_no_contacts_no_contact_block(read: Reader, make_record: MakeRecord) -> None:
    found = lines(read, make_record(contacts=[]))
    assert found[-1] == "SOURCE: Northwind Biologics, Inc."


def test_about_keeps_its_paragraphs(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(company={"about": "First paragraph.\n\nSecond\nparagraph."})
    found = lines(read, record)
    about = found.index("About Northwind Biologics, Inc.")
    assert found[about + 1 : about + 3] == ["First paragraph.", "Second paragraph."]


def test_other_kinds_of_event_are_not_about_results(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(event={"kind": "investor_day", "title": "2026 Investor Day"})
    assert (
        "will host a conference call at 4:30 p.m. ET on Thursday, November 5, 2026, "
        "to discuss its 2026 Investor Day."
    ) in read(record)


# --- Time zones and clock changes -----------------------------------------------------


def test_london_event(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(event={"starts_at": "2026-03-03T09:00:00", "timezone": "Europe/London"})
    assert "conference call at 9:00 a.m. GMT (4:00 a.m. ET) on Tuesday, March 3, 2026," in read(
        record
    )


def test_london_while_only_the_us_has_changed_its_clocks(
    read: Reader, make_record: MakeRecord
) -> None:
    record = make_record(event={"starts_at": "2026-03-10T14:00:00", "timezone": "Europe/London"})
    assert record.starts_at.hour == 14
    assert "at 2:00 p.m. GMT (10:00 a.m. ET) on Tuesday, March 10, 2026," in read(record)


def test_tokyo_event_on_another_eastern_day(read: Reader, make_record: MakeRecord) -> None:
    record = make_record(event={"starts_at": "2026-11-05T08:00:00", "timezone": "Asia/Tokyo"})
    assert (
        "at 8:00 a.m. JST (6:00 p.m. ET on Wednesday, November 4, 2026) "
        "on Thursday, November 5, 2026,"
    ) in read(record)


def test_new_york_after_the_fall_back(read: Reader, make_record: MakeRecord) -> None:
    # Clocks fell back on November 1, 2026: 9:00 EST is 14:00 UTC, not 13:00.
    record = make_record(event={"starts_at": "2026-11-02T09:00:00"})
    assert record.starts_at.hour == 14
    assert "at 9:00 a.m. ET on Monday, November 2, 2026," in read(record)


# --- HTML -----------------------------------------------------------------------------


def test_html_is_a_complete_semantic_page(northwind: EventRecord) -> None:
    page = render_html(northwind)
    reader = read_page(page)
    assert reader.doctype is not None and reader.doctype.lower() == "doctype html"
    assert reader.faults == []
    assert reader.stack == []
    tags = [tag for tag, _ in reader.tags]
    assert tags[:1] == ["html"]
    assert dict(reader.tags[0][1]) == {"lang": "en"}
    metas = [attrs for tag, attrs in reader.tags if tag == "meta"]
    assert {"charset": "utf-8"} in metas
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
    assert tags.count("h1") == 1
    for needed in ("title", "style", "article", "header", "address", "footer", "time"):
        assert needed in tags
    assert tags.index("h1") < tags.index("address")


def test_html_links_dial_and_mail(northwind: EventRecord) -> None:
    hrefs = [attrs["href"] for tag, attrs in read_page(render_html(northwind)).tags if tag == "a"]
    assert hrefs == [
        "tel:+18665550199",
        "tel:+19135550123",
        "https://www.northwind.example/",
        "tel:+18665550188",
        "tel:+16175550142",
        "mailto:ir@northwind.example",
        "tel:+16175550177",
    ]


def test_html_marks_up_dates_for_machines(northwind: EventRecord) -> None:
    times = [
        attrs["datetime"] for tag, attrs in read_page(render_html(northwind)).tags if tag == "time"
    ]
    assert times == ["2026-10-29", "2026-11-05T21:30:00Z"]


def test_html_escapes_every_value(make_record: MakeRecord) -> None:
    record = make_record(
        company={"name": "Smith & <b>Sons</b> Inc.", "city": "A&B <i>"},
        contacts=[{"group": "<script>", "name": 'O\'Hara & "Co"', "email": "a&b@x.example"}],
    )
    page = render_html(record)
    assert "<b>" not in page and "<i>" not in page and "<script>" not in page
    assert "Smith &amp; &lt;b&gt;Sons&lt;/b&gt; Inc. Announces" in page
    assert read_page(page).faults == []
    text = html_text(page)
    assert text.splitlines()[0].startswith("Smith & <b>Sons</b> Inc. Announces")
    assert "discuss Smith & <b>Sons</b>'s financial results" in text
    assert 'O\'Hara & "Co"' in text
    hrefs = [attrs["href"] for tag, attrs in read_page(page).tags if tag == "a"]
    assert "mailto:a%26b@x.example" in hrefs


def test_html_refuses_a_script_url(make_record: MakeRecord) -> None:
    record = make_record().model_copy(update={"webcast_url": "javascript:alert(1)"})
    with pytest.raises(ValueError, match="http"):
        render_html(record)


# --- Markdown -------------------------------------------------------------------------


def test_markdown_structure_and_links(northwind: EventRecord) -> None:
    markdown = render_markdown(northwind)
    assert markdown.startswith(f"# {HEADLINE}\n\n")
    assert "\n## About Northwind Biologics, Inc.\n" in markdown
    assert "[866-555-0199](<tel:+18665550199>) (U.S./Canada)" in markdown
    assert "[https://www.northwind.example](<https://www.northwind.example/>)" in markdown
    assert "[ir@northwind.example](<mailto:ir@northwind.example>)" in markdown
    assert "**Investors:**" in markdown


def test_markdown_escapes_values(make_record: MakeRecord) -> None:
    record = make_record(
        company={"name": "*Star* & <Co> [x]", "about": "# not a heading\n\n1. not a list"}
    )
    markdown = render_markdown(record)
    assert markdown.startswith("# \\*Star\\* & \\<Co\\> \\[x\\] Announces")
    assert "\n\\# not a heading\n" in markdown
    assert "\n1\\. not a list\n" in markdown


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain words", "plain words"),
        ("a_b*c", "a\\_b\\*c"),
        ("<b>", "\\<b\\>"),
        ("AT&T", "AT&T"),
        ("&amp;", "\\&amp;"),
        ("- item", "\\- item"),
        ("+ item", "\\+ item"),
        ("+44 20", "+44 20"),
        ("-5 degrees", "-5 degrees"),
        ("---", "\\---"),
        ("## h", "\\## h"),
        ("#hashtag", "#hashtag"),
        ("2) x", "2\\) x"),
        ("2026 results", "2026 results"),
    ],
)
def test_markdown_escape(value: str, escaped: str) -> None:
    assert markdown_escape(value) == escaped


# --- Names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("company", "short"),
    [
        ("ImmunoGen, Inc.", "ImmunoGen"),
        ("Northwind Biologics, Inc.", "Northwind Biologics"),
        ("Acme Corp.", "Acme"),
        ("Acme Corporation", "Acme"),
        ("Foo Holdings Co., Ltd.", "Foo Holdings"),
        ("Siemens AG", "Siemens"),
        ("Unilever PLC", "Unilever"),
        ("Incyte", "Incyte"),
        ("Inc.", "Inc."),
    ],
)
def test_short_name(company: str, short: str) -> None:
    assert short_name(company) == short


@pytest.mark.parametrize(
    ("name", "owned"),
    [
        ("ImmunoGen", "ImmunoGen's"),
        ("Northwind Biologics", "Northwind Biologics'"),
        ("IBM", "IBM's"),
    ],
)
def test_possessive(name: str, owned: str) -> None:
    assert possessive(name) == owned


# --- Dispatch -------------------------------------------------------------------------


def test_render_dispatches(northwind: EventRecord) -> None:
    assert render(northwind, "text") == render_text(northwind)
    assert render(northwind, "html") == render_html(northwind)
    assert render(northwind, "md") == render_markdown(northwind)
    assert render(northwind, "ics", now=NOW).startswith(b"BEGIN:VCALENDAR")
    assert set(MEDIA_TYPES) == {"text", "html", "md", "ics"}


def test_render_takes_a_format_chosen_at_run_time(northwind: EventRecord) -> None:
    formats: list[Format] = ["text", "html", "md", "ics"]
    bodies = [render(northwind, fmt, now=NOW) for fmt in formats]
    assert [type(body) for body in bodies] == [str, str, str, bytes]


def test_render_ics_needs_now(northwind: EventRecord) -> None:
    with pytest.raises(ValueError, match="now"):
        render(northwind, "ics")


def test_render_refuses_an_unknown_format(northwind: EventRecord) -> None:
    with pytest.raises(ValueError, match="pdf"):
        render(northwind, "pdf")  # type: ignore[call-overload]


PUBLIC = "https://ir.northwind.example/"
HOSTED = {
    "text": lambda r: plain_text(render_text(r, PUBLIC)),
    "html": lambda r: html_text(render_html(r, PUBLIC)),
    "md": lambda r: markdown_text(render_markdown(r, PUBLIC)),
}


@pytest.mark.parametrize("fmt", sorted(HOSTED))
def test_the_hosted_webcast_page_is_the_webcast_url_when_none_is_typed(
    fmt: str, make_record: MakeRecord
) -> None:
    """callbridge hosts the webcast page: its own address (serve --public-url) is printed."""
    text = HOSTED[fmt](make_record())
    assert (
        "A live webcast of the call will be available at "
        "https://ir.northwind.example/events/7/webcast."
    ) in text
    # A typed webcast_url still wins.
    typed = make_record(event={"webcast_url": "https://events.example/nwbx"})
    assert "https://events.example/nwbx." in HOSTED[fmt](typed)
    assert "/events/7/webcast" not in HOSTED[fmt](typed)


@pytest.mark.parametrize(
    "public_url",
    [
        None,
        "",
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000/",
        "http://0.0.0.0",
    ],
)
def test_a_public_url_of_this_machine_only_is_never_printed(
    public_url: str | None, make_record: MakeRecord
) -> None:
    record = make_record()
    assert hosted_webcast_url(record, public_url) is None
    assert "/webcast" not in render_text(record, public_url)
    assert hosted_webcast_url(record, "https://10.0.0.5:8443") == (
        "https://10.0.0.5:8443/events/7/webcast"
    )


def test_a_number_for_callers_abroad_prints_with_its_country_code(
    make_record: MakeRecord,
) -> None:
    """A U.S. number labelled for callers abroad gets its +1; other countries' always have one."""
    record = make_record(
        event={
            "dial_in": [
                {"label": "U.S./Canada", "number": "+1 866-555-0199"},
                {"label": "Outside the U.S.", "number": "+1 913-555-0123"},
                {"label": "United Kingdom", "number": "+44 20 7946 0999"},
            ]
        }
    )
    text = plain_text(render_text(record))
    assert (
        "dial 866-555-0199 (U.S./Canada), +1 913-555-0123 (Outside the U.S.) or "
        "+44 20 7946 0999 (United Kingdom)"
    ) in text
    assert dial_in_display("+19135550123", "Intl. toll") == "+1 913-555-0123"
    assert dial_in_display("+19135550123", "Toll") == "913-555-0123"
    assert dial_in_display("+442079460999", "London", "GB") == "020 7946 0999"
