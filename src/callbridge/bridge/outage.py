"""Riding out a database outage: when to try the database, what a live call answers meanwhile.

The media plane's link to the shared database is up or down (``Link``, a
transition table). Every write the media plane makes (the call log, where a
written question stands, an event's state) is journalled locally first and
written from the journal, oldest first (``bridge.journal``); this module
decides, from what happened and the time now (a parameter), when the next
try may go (``Reachability``), how many journalled entries one transaction
takes (``next_batch``), and what a caller's code opens when the database
cannot say (``CodeBook``).

- **When to try.** A try that failed for want of the database (a refused or
  lost connection, a timeout) takes the link down; the next try waits
  ``backoff(failures)``: 0.25 s doubling to ``MAX_BACKOFF``, so a database
  back after a 60 s outage is written to within 5 s, and a dead one costs a
  try every 5 s, not a busy loop. While the link is down, reads are not tried
  at all (a partitioned database holds a connect for its whole timeout); the
  journal's writer is the one probe, and its success brings the link up.
- **What a batch is.** Entries of one kind in a row, at most ``BATCH`` of
  them: one kind per transaction keeps the journal's order exactly (a call
  log batch never overtakes a question's state written before it).
- **What a caller's code opens.** The live calls' passcodes (their records)
  and registrants' PINs (their keyed hashes) are kept from the last time the
  database gave them: when the call starts on this node, and every
  ``REFRESH_INTERVAL`` while the database is up. When it is not, the code is
  matched against them exactly as ``store.events.match_passcode`` and
  ``store.pins.match`` would (same precedence: speaker, listener, replay).

Pure: no clock, no socket, no database.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from callbridge.events.schema import EventRecord, EventState

# The first retry's wait, doubling per failure up to MAX_BACKOFF (seconds).
FIRST_BACKOFF = 0.25
MAX_BACKOFF = 5.0
# Journalled entries one transaction writes at most.
BATCH = 500
# While the link is up and nothing was asked of the database for this long, the
# writer asks it for nothing, so an outage shows on the console within seconds
# of starting, not at the next write.
PROBE_INTERVAL = 5.0
# How often the live calls' codes and PINs are read again while the database is up (s).
REFRESH_INTERVAL = 30.0

# What the store names a number's purposes (``store.events.LIVE`` / ``REPLAY``);
# repeated here so this module needs no database code.
LIVE = "live"
REPLAY = "replay"


class Link(enum.Enum):
    UP = "up"
    DOWN = "down"


class Outcome(enum.Enum):
    """What a try at the database came to."""

    SUCCEEDED = "succeeded"
    UNREACHABLE = "unreachable"  # no connection, or it broke: try again later


TRANSITIONS: dict[tuple[Link, Outcome], Link] = {
    (Link.UP, Outcome.SUCCEEDED): Link.UP,
    (Link.UP, Outcome.UNREACHABLE): Link.DOWN,
    (Link.DOWN, Outcome.UNREACHABLE): Link.DOWN,
    (Link.DOWN, Outcome.SUCCEEDED): Link.UP,
}


def backoff(failures: int) -> float:
    """The wait after ``failures`` failed tries in a row (0 after none)."""
    if failures <= 0:
        return 0.0
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** (failures - 1))


@dataclass
class Reachability:
    """Whether the database answers, since when, and when it may be tried next."""

    link: Link = Link.UP
    since: float = 0.0
    failures: int = 0  # failed tries in a row
    retry_at: float = 0.0
    outages: int = 0  # times the link went down
    tried_at: float = 0.0  # the last try's time, whatever came of it

    def happened(self, outcome: Outcome, now: float) -> bool:
        """Take ``outcome`` of a try made at ``now``; True if the link changed."""
        new = TRANSITIONS.get((self.link, outcome))
        if new is None:  # the table lists every pair; a new Link or Outcome must be added
            raise ValueError(f"no transition from {self.link} on {outcome}")
        self.tried_at = now
        if outcome is Outcome.SUCCEEDED:
            self.failures = 0
            self.retry_at = now
        else:
            self.failures += 1
            self.retry_at = now + backoff(self.failures)
        changed = new is not self.link
        if changed:
            self.link, self.since = new, now
            if new is Link.DOWN:
                self.outages += 1
        return changed

    @property
    def up(self) -> bool:
        return self.link is Link.UP

    def may_write(self, now: float) -> bool:
        """Whether the journal's writer may try now (its backoff is over)."""
        return now >= self.retry_at

    def probe_at(self) -> float:
        """When to ask the database whether it is there, if nothing else asks first."""
        if self.link is Link.DOWN:
            return self.retry_at
        return self.tried_at + PROBE_INTERVAL

    def may_read(self) -> bool:
        """Whether a read should try the database, or answer from what is kept."""
        return self.link is Link.UP


K = TypeVar("K")


@dataclass(frozen=True)
class Journalled(Generic[K]):
    """One entry of the journal: its order, its kind, what it says."""

    seq: int
    kind: K
    body: str


def next_batch(pending: Sequence[Journalled[K]], limit: int = BATCH) -> list[Journalled[K]]:
    """The oldest entries of one kind, in a row, at most ``limit``: one transaction's worth."""
    if not pending:
        return []
    kind = pending[0].kind
    batch: list[Journalled[K]] = []
    for entry in pending:
        if entry.kind != kind or len(batch) >= limit:
            break
        batch.append(entry)
    return batch


# -- what a caller's code opens when the database cannot say -------------------------------


@dataclass(frozen=True)
class CodeMatch:
    """What a passcode opens: the event and the role (``store.events.PasscodeMatch``'s fields)."""

    event_id: int
    role: str


@dataclass(frozen=True)
class KeptPin:
    """A registrant's PIN as kept: the event, the registrant (``store.pins.PinMatch``'s fields)."""

    event_id: int
    listener_id: int
    name: str
    firm: str | None
    email: str | None


@dataclass
class CodeBook:
    """The live calls' records and PINs as last read: the answers while the database is down."""

    records: dict[int, EventRecord] = field(default_factory=dict)
    # Per event: its PINs' keyed hashes (``PinBook.digest``) and who each names.
    pins: dict[int, Mapping[str, KeptPin]] = field(default_factory=dict)

    def keep(self, record: EventRecord, pins: Mapping[str, KeptPin] | None = None) -> None:
        """Remember ``record`` (and its PINs, when read) as the database gave them."""
        self.records[record.id] = record
        if pins is not None:
            self.pins[record.id] = pins

    def forget(self, event_id: int) -> None:
        self.records.pop(event_id, None)
        self.pins.pop(event_id, None)

    def _reachable(self, dialled: str | None) -> Iterable[tuple[EventRecord, str | None]]:
        """The kept events a caller of ``dialled`` may reach, with the number's purpose."""
        for record in sorted(self.records.values(), key=lambda r: r.id):
            if record.state is EventState.ARCHIVED:
                continue
            if dialled is None:
                yield record, None
                continue
            if any(d.number == dialled for d in record.dial_in):
                yield record, LIVE
            elif any(d.number == dialled for d in record.replay_dial_in):
                yield record, REPLAY

    def match(self, dialled: str | None, code: str) -> CodeMatch | None:
        """What ``code`` opens on ``dialled``, as ``EventStore.match_passcode`` says it."""
        for record, purpose in self._reachable(dialled):
            if code == record.speaker_passcode and purpose in (LIVE, None):
                return CodeMatch(record.id, "speaker")
            if code == record.passcode and purpose in (LIVE, None):
                return CodeMatch(record.id, "listener")
            if code == record.replay_passcode and purpose in (REPLAY, None):
                return CodeMatch(record.id, "replay")
        return None

    def match_pin(self, dialled: str | None, digest: str) -> KeptPin | None:
        """The registrant whose PIN has keyed hash ``digest``, on a live number of their event."""
        for record, purpose in self._reachable(dialled):
            kept = self.pins.get(record.id, {}).get(digest)
            if kept is not None and purpose in (LIVE, None):
                return kept
        return None

    def plan(self, dialled: str | None) -> tuple[tuple[int, ...], frozenset[int], frozenset[str]]:
        """The dial plan (event ids, code lengths, speaker phones) of the kept events.

        PIN lengths are added by the caller (``pin_digits``) where a kept event has PINs.
        """
        ids: list[int] = []
        lengths: set[int] = set()
        phones: set[str] = set()
        for record, purpose in self._reachable(dialled):
            ids.append(record.id)
            phones.update(s.phone for s in record.speakers if s.phone)
            if purpose in (LIVE, None):
                lengths.update((len(record.passcode), len(record.speaker_passcode)))
            if purpose in (REPLAY, None):
                lengths.add(len(record.replay_passcode))
        return tuple(ids), frozenset(lengths), frozenset(phones)

    def has_pins(self, event_ids: Iterable[int]) -> bool:
        return any(self.pins.get(event_id) for event_id in event_ids)
