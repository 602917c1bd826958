"""A speaker entry either validates into a plain one-line name or is refused, for any text."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from callbridge.events.names import MAX_NAME, plain_name
from callbridge.events.schema import SpeakerIn

texts = st.text(max_size=2 * MAX_NAME) | st.sampled_from(
    ["Mark Chen", " Mark\tChen ", "Mark\u200bChen", "x" * 101, "<b>CFO</b>", "\n"]
)
phones = st.none() | st.text(max_size=30) | st.sampled_from(["212-555-1234", "+44 20 7946 0000"])


@given(texts, st.none() | texts, phones)
def test_an_entry_is_valid_plain_text_or_refused(
    name: str, title: str | None, phone: str | None
) -> None:
    try:
        speaker = SpeakerIn.model_validate({"name": name, "title": title, "phone": phone})
    except ValidationError:
        return
    label = f"{speaker.name}, {speaker.title}" if speaker.title else speaker.name
    assert 0 < len(label) <= MAX_NAME
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in label)
    assert speaker.name == plain_name(speaker.name)  # already tidy: nothing left to collapse
    assert speaker.phone is None or (speaker.phone.startswith("+") and speaker.phone[1:].isdigit())
