"""Validation problems as 'which field, and why', for the CLI and the API alike.

A check that spans fields (the replay ends before the call) runs on the
whole event, so pydantic reports it at the event's location; its message
starts with the field's name, and here that name moves into the location.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_]+): (.*)$", re.DOTALL)


def normalise_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's error dicts with the field moved into ``loc`` and no 'Value error, '."""
    result: list[dict[str, Any]] = []
    for error in errors:
        loc: Sequence[Any] = list(error.get("loc", ()))
        message = str(error.get("msg", ""))
        if match := _FIELD_PREFIX.match(message):
            loc = [*loc, match.group(1)]
            message = match.group(2)
        message = message.removeprefix("Value error, ")
        clean = {k: v for k, v in error.items() if k not in ("ctx", "url", "input")}
        clean["loc"] = list(loc)
        clean["msg"] = message
        result.append(clean)
    return result


def describe(errors: Iterable[Mapping[str, Any]], skip_first: int = 0) -> str:
    """The first problem as one line: 'event.dial_in.0.number: reason'."""
    first = normalise_errors(errors)[0]
    loc = ".".join(str(part) for part in first["loc"][skip_first:])
    return f"{loc}: {first['msg']}" if loc else str(first["msg"])
