"""How a participant is called on a call: the console's naming and the event's speaker list.

One rule for both: a name is one line of at most ``MAX_NAME`` characters,
its runs of white space collapsed, with no control or format characters;
markup in it is text (every page escapes it). A listed speaker is shown as
"Name, Title", which is also how a moderator types a name in the console.
"""

from __future__ import annotations

import unicodedata

MAX_NAME = 100  # characters of a participant's name (with the title, as shown)

# Control (Cc: CR, LF, NUL, ...) and format (Cf: bidi overrides, zero-width) characters.
_HIDDEN = frozenset({"Cc", "Cf"})


def plain_name(value: str) -> str:
    """The name with its white space collapsed; ValueError says why it cannot be one.

    Call on anything typed as a participant's name or title before keeping it.
    """
    value = " ".join(value.split())
    if not value:
        raise ValueError("a name cannot be blank")
    if any(unicodedata.category(c) in _HIDDEN for c in value):
        raise ValueError("a name cannot hold control characters")
    if len(value) > MAX_NAME:
        raise ValueError(f"a name is at most {MAX_NAME} characters")
    return value


def speaker_label(name: str, title: str | None) -> str:
    """A listed speaker as the console, transcript and captions show them."""
    return f"{name}, {title}" if title else name


def registrant_label(name: str, firm: str | None) -> str:
    """A webcast registrant as the console, queue and captions show them: "Name, Firm".

    What they typed, with white space collapsed and hidden characters
    dropped, cut to ``MAX_NAME`` characters (registration allows longer).
    """

    def clean(value: str) -> str:
        shown = "".join(c for c in value if unicodedata.category(c) not in _HIDDEN)
        return " ".join(shown.split())

    label = speaker_label(clean(name), clean(firm) if firm else None)
    return label if len(label) <= MAX_NAME else label[: MAX_NAME - 1] + "…"
