"""The release names the listed speakers who will host the call, in the seed's wire style."""

from __future__ import annotations

import pytest

from callbridge.announce.render import hosts_sentence, render_html, render_markdown, render_text
from callbridge.events.schema import EventFile, Speaker
from tests.announce.conftest import example_data, to_record

CFO = Speaker(name="Mark Chen", title="Chief Financial Officer", phone="+12125551234")
CEO = Speaker(name="Lee Park", title="Chief Executive Officer")
IR = Speaker(name="Dana Fox")


@pytest.mark.parametrize(
    ("speakers", "sentence"),
    [
        ([], None),
        ([CFO], "Mark Chen, Chief Financial Officer, will host the call."),
        ([IR], "Dana Fox will host the call."),
        (
            [CEO, CFO],
            "Lee Park, Chief Executive Officer, and Mark Chen, Chief Financial Officer, "
            "will host the call.",
        ),
        ([CFO, IR], "Mark Chen, Chief Financial Officer, and Dana Fox will host the call."),
        ([IR, CFO], "Dana Fox and Mark Chen, Chief Financial Officer, will host the call."),
        (
            [CEO, CFO, IR],
            "Lee Park, Chief Executive Officer; Mark Chen, Chief Financial Officer; "
            "and Dana Fox will host the call.",
        ),
        ([IR, IR, IR], "Dana Fox, Dana Fox, and Dana Fox will host the call."),
    ],
)
def test_the_hosts_sentence(speakers: list[Speaker], sentence: str | None) -> None:
    assert hosts_sentence(speakers) == sentence


def test_every_format_names_the_hosts_after_the_call_sentence_and_escapes_them() -> None:
    data = example_data()
    data["event"]["speakers"] = [
        {"name": "Mark <b>Chen</b>", "title": "Chief *Financial* Officer", "phone": "2125551234"}
    ]
    record = to_record(EventFile.model_validate(data))
    text = render_text(record)
    assert (
        "ended September 30, 2026. Mark <b>Chen</b>, Chief *Financial* Officer, "
        "will host the call.\n" in text
    )
    assert "212" not in text.split("will host the call.")[0][-200:]  # no phone is printed
    page = render_html(record)
    assert (
        "Mark &lt;b&gt;Chen&lt;/b&gt;, Chief *Financial* Officer, will host the call.</p>" in page
    )
    assert "<b>Chen" not in page
    markdown = render_markdown(record)
    assert r"Mark \<b\>Chen\</b\>, Chief \*Financial\* Officer, will host the call." in markdown


def test_no_speakers_no_sentence() -> None:
    record = to_record(EventFile.model_validate(example_data()))
    assert "will host the call" not in render_text(record)
