"""Who spoke when, for live captions: the media plane's talkers on the caption clock.

The mix says nothing of who speaks, but the bridge knows who was talking on
each tick and who they are. The caption host (``webcast.captions``) sends the
worker a record whenever the set of talkers changes, or a talker is named:
from sample ``at`` on, these labels spoke (an unnamed talker is ``""``). A cue
then carries the label that spoke longest over its span, so a caption reads
"Mark Chen: ..." as soon as the moderator has named him, and a questioner's
name while their line is open. Where the longest talker is unnamed, or nobody
was talking (the detector's hangover, a pause inside the piece), the cue has
no label and the page shows the plain "Speaker".

Sans IO; the only clock is the samples.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

# Changes kept: a minute of talk turns, far more than the captions' delay.
MAX_CHANGES = 4096


@dataclass(frozen=True)
class Talkers:
    """From sample ``at`` on, ``labels`` were talking ("" for one nobody has named)."""

    at: int
    labels: tuple[str, ...]


class SpeakerTimeline:
    """The talkers' changes in sample order; ``label`` names a span's main speaker."""

    def __init__(self, max_changes: int = MAX_CHANGES) -> None:
        self._at: list[int] = []
        self._labels: list[tuple[str, ...]] = []
        self._max = max_changes

    def __len__(self) -> int:
        return len(self._at)

    def add(self, change: Talkers) -> None:
        """Record a change; one at or before the last replaces what follows it (a restart)."""
        cut = bisect.bisect_left(self._at, change.at)
        del self._at[cut:], self._labels[cut:]
        self._at.append(change.at)
        self._labels.append(tuple(change.labels))
        if len(self._at) > self._max:
            drop = len(self._at) - self._max
            del self._at[:drop], self._labels[:drop]

    def label(self, start: int, end: int) -> str | None:
        """The named talker who spoke longest between samples ``start`` and ``end``.

        None when the longest talker has no name, or nobody was talking. Two
        talking at once share the span; the longest wins, the earlier change on a tie.
        """
        if end <= start or not self._at:
            return None
        spoken: dict[str, int] = {}
        first = max(0, bisect.bisect_right(self._at, start) - 1)
        for index in range(first, len(self._at)):
            begin = max(start, self._at[index])
            if begin >= end:
                break
            until = self._at[index + 1] if index + 1 < len(self._at) else end
            length = min(end, until) - begin
            if length <= 0:
                continue
            for label in self._labels[index]:
                spoken[label] = spoken.get(label, 0) + length
        if not spoken:
            return None
        best = max(spoken, key=lambda label: spoken[label])
        return best or None


def labels_of(talking: Sequence[str], names: dict[str, str]) -> tuple[str, ...]:
    """The labels of ``talking`` participant ids: their names, "" for the unnamed, sorted."""
    return tuple(sorted(names.get(participant, "") for participant in talking))
