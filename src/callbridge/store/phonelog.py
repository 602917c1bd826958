"""Phone callers as the exports show them, read from the call log: numbers, names, ``*1``.

Everything here is derived from rows the bridge already writes, so the
exports (``attendance.csv``, ``questions.csv``) need no table of their own:

- A caller's **number** is what the trunk asserted for them
  (P-Asserted-Identity, else the From URI's user part; ``sip.identity``),
  which the bridge puts in its ``join`` row's detail as ``number``. The
  row's ``caller_id`` is what the caller's phone sent for the console (the
  display name when there is one), typed by the caller: it is never taken
  for a number. A caller nobody vouched for (withheld, or a row written
  before numbers were kept) has none.
- A caller's **name** is the latest ``name`` row about them: the moderator's,
  or the event's speaker list as they joined, or their registration.
- A caller on a personal PIN (``store.pins``) is a **registrant**: their
  ``join`` row's detail holds the webcast listener's id (``registrant``),
  whose name, firm and email the exports read from the registration itself
  (a registrant deleted since is shown without them).
- A **``*1`` question** is a ``queue`` row; the line the moderator then
  opened for that caller (``line_open``) and closed (``line_close``), or the
  ``withdraw`` that took it out of the queue (by ``*2``, or the moderator's
  remove), or the caller's ``leave``, say what became of it.

Pure: call-log entries in, views out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from callbridge.store.calllog import LogEntry, LogKind

# The actor of a *2 (the caller's own withdrawal); any other actor is the moderator's.
KEYPAD = "keypad"


@dataclass(frozen=True)
class Caller:
    """One phone participant as the exports name them."""

    participant_id: str
    number: str | None  # as the trunk asserted it; None when nobody vouched
    caller_name: str | None  # what their phone sent (display name or From user)
    name: str | None  # the moderator's (or the speaker list's) name for them
    registrant: int | None = None  # the webcast listener their personal PIN named


@dataclass(frozen=True)
class KeypadQuestion:
    """One ``*1``: when it was asked, when its line was opened and closed, how it ended.

    ``outcome`` is ``answered`` (the line was opened and closed), ``on air``
    (opened, not closed when the log ends), ``withdrawn`` (``*2``),
    ``removed`` (by the moderator), ``left`` (the caller hung up first),
    ``not taken`` (still queued when the call ended) or ``waiting``.
    """

    participant_id: str
    asked_at: datetime
    opened_at: datetime | None
    closed_at: datetime | None
    outcome: str
    settled_at: datetime | None
    actor: str | None  # who opened, removed or closed it


def callers(entries: Iterable[LogEntry]) -> dict[str, Caller]:
    """Every phone participant of the log, by participant id."""
    found: dict[str, Caller] = {}
    for entry in entries:
        pid = entry.participant_id
        if pid is None:
            continue
        if entry.kind is LogKind.JOIN and entry.channel != "web":
            number = str(entry.detail.get("number") or "") or None
            registrant = entry.detail.get("registrant")
            listener = registrant if isinstance(registrant, int) else None
            found[pid] = Caller(pid, number, entry.caller_id or None, None, listener)
        elif entry.kind is LogKind.NAME and pid in found:
            name = str(entry.detail.get("name") or "") or None
            found[pid] = replace(found[pid], name=name)
    return found


@dataclass
class _Open:
    asked_at: datetime
    opened_at: datetime | None = None
    actor: str | None = None


def keypad_questions(entries: Iterable[LogEntry]) -> list[KeypadQuestion]:
    """Every ``*1`` of the log, first asked first, with what became of it."""
    done: list[KeypadQuestion] = []
    pending: dict[str, _Open] = {}

    def settle(pid: str, outcome: str, at: datetime | None, actor: str | None) -> None:
        asked = pending.pop(pid)
        closed = at if outcome == "answered" else None
        done.append(
            KeypadQuestion(
                pid, asked.asked_at, asked.opened_at, closed, outcome, at, actor or asked.actor
            )
        )

    for entry in entries:
        pid = entry.participant_id
        if entry.kind is LogKind.END:
            for waiting in list(pending):
                opened = pending[waiting].opened_at is not None
                settle(waiting, "on air" if opened else "not taken", entry.at, None)
            continue
        if pid is None:
            continue
        if entry.kind is LogKind.QUEUE:
            if pid in pending:
                continue  # a second *1 while queued changes nothing
            pending[pid] = _Open(entry.at)
        elif pid not in pending:
            continue
        elif entry.kind is LogKind.LINE_OPEN:
            pending[pid].opened_at = entry.at
            pending[pid].actor = entry.actor
        elif entry.kind is LogKind.LINE_CLOSE:
            settle(pid, "answered", entry.at, entry.actor)
        elif entry.kind is LogKind.WITHDRAW and pending[pid].opened_at is None:
            outcome = "withdrawn" if entry.actor == KEYPAD else "removed"
            settle(pid, outcome, entry.at, entry.actor)
        elif entry.kind is LogKind.LEAVE:
            opened = pending[pid].opened_at is not None
            settle(pid, "answered" if opened else "left", entry.at, None)
    for pid in list(pending):
        asked = pending.pop(pid)
        outcome = "on air" if asked.opened_at is not None else "waiting"
        done.append(
            KeypadQuestion(pid, asked.asked_at, asked.opened_at, None, outcome, None, asked.actor)
        )
    return sorted(done, key=lambda q: (q.asked_at, q.participant_id))
