"""What the IR team takes away from a call: the attendance, questions and audit CSVs, and links.

- ``attendance.csv``: one row per phone participant (from the call log) and
  per web listener (from the webcast's beacons). A phone caller's
  ``caller_id`` is their number as the trunk asserted it, ``caller_name``
  what their phone sent, ``name`` the name the moderator (or the speaker
  list) gave them (``store.phonelog``); a caller on a personal PIN has the
  name, firm and email they registered with. Live and replay listening are kept
  apart: ``live_seconds`` and ``replay_seconds``, with ``seconds`` their sum.
- ``questions.csv``: the ``*1`` questions (asked, line opened, line closed)
  and the written ones, first asked first.
- ``audit.csv``: the call log as the audit trail shows it, one row per entry.

Every cell passes ``spreadsheet_safe``. ``web.downloads`` links them from
the console's pages.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from callbridge.events.schema import EventRecord
from callbridge.store.audience import Audience, WebListener
from callbridge.store.calllog import Attendance, CallLog, LogEntry
from callbridge.store.outbox import Consent, Outbox
from callbridge.store.phonelog import Caller, KeypadQuestion, callers, keypad_questions
from callbridge.store.questions import QuestionStore, WrittenQuestion
from callbridge.web.calls import OperatorDep, Store, spreadsheet_safe

router = APIRouter(prefix="/api/events/{event_id}", tags=["calls"])

REPLAY_ROLE = "replay"

ATTENDANCE_HEADER = [
    "participant",
    "channel",
    "caller_id",
    "caller_name",
    "name",
    "firm",
    "email",
    "role",
    "joined_at",
    "left_at",
    "seconds",
    "live_seconds",
    "replay_seconds",
    "reason",
    # What a web registrant agreed to be emailed, and when; an unsubscribe (callbridge.mail).
    "email_consent",
]
QUESTIONS_HEADER = [
    "asked_at",
    "kind",
    "participant",
    "caller_id",
    "name",
    "firm",
    "question",
    "outcome",
    "line_opened_at",
    "line_closed_at",
    "settled_at",
]
AUDIT_HEADER = ["at", "kind", "participant", "channel", "caller_id", "role", "actor", "detail"]


def _when(at: datetime | None) -> str:
    return at.isoformat() if at is not None else ""


def _safe(cells: list[str]) -> list[str]:
    return [spreadsheet_safe(cell) for cell in cells]


def attendance_rows(
    rows: list[Attendance],
    entries: list[LogEntry],
    web: list[WebListener],
    consents: dict[int, Consent] | None = None,
) -> list[list[str]]:
    """``attendance.csv``'s rows, header first: phone participants, then web listeners."""
    known = callers(entries)
    registrants = {listener.id: listener for listener in web}
    out = [ATTENDANCE_HEADER]
    for row in rows:
        caller = known.get(row.participant_id) or Caller(
            row.participant_id, None, row.caller_id, None
        )
        name, firm, email = _registered(caller, registrants)
        duration = row.duration
        seconds = f"{duration.total_seconds():.0f}" if duration is not None else ""
        replay = row.role == REPLAY_ROLE
        out.append(
            _safe(
                [
                    row.participant_id,
                    row.channel,
                    caller.number or "",
                    caller.caller_name or "",
                    name,
                    firm,
                    email,
                    row.role or "",
                    row.joined_at.isoformat(),
                    _when(row.left_at),
                    seconds,
                    "" if replay else seconds,
                    seconds if replay else "",
                    row.reason or "",
                    "",
                ]
            )
        )
    for listener in web:
        heard = listener.first_heard_at is not None
        role = "listener" if listener.live_seconds or not listener.replay_seconds else "replay"
        out.append(
            _safe(
                [
                    f"w{listener.id}",
                    "web",
                    "",
                    "",
                    listener.name or "",
                    listener.firm or "",
                    listener.email or "",
                    role,
                    (listener.first_heard_at or listener.registered_at).isoformat(),
                    _when(listener.last_heard_at),
                    str(listener.live_seconds + listener.replay_seconds),
                    str(listener.live_seconds),
                    str(listener.replay_seconds),
                    "" if heard else "registered, did not listen",
                    consent.describe() if (consent := (consents or {}).get(listener.id)) else "",
                ]
            )
        )
    return out


def _registered(caller: Caller, registrants: dict[int, WebListener]) -> tuple[str, str, str]:
    """A phone caller's name, firm and email: their registration's, if a PIN named them.

    A registrant no longer registered (deleted) is anonymised: no name, even
    the one their PIN gave them on the call.
    """
    if caller.registrant is None:
        return caller.name or "", "", ""
    listener = registrants.get(caller.registrant)
    if listener is None or listener.name is None:
        return "", "", ""
    return listener.name, listener.firm or "", listener.email or ""


@dataclass(frozen=True)
class _Asked:
    at: datetime
    cells: list[str]


def question_rows(entries: list[LogEntry], written: list[WrittenQuestion]) -> list[list[str]]:
    """``questions.csv``'s rows, header first: ``*1`` and written questions by when asked."""
    known = callers(entries)
    asked: list[_Asked] = []
    for q in keypad_questions(entries):
        asked.append(_Asked(q.asked_at, _keypad_cells(q, known.get(q.participant_id))))
    for w in written:
        cells = [
            w.asked_at.isoformat(),
            "written",
            w.key,
            "",
            w.name,
            w.firm or "",
            w.text,
            w.state,
            "",
            "",
            _when(w.settled_at),
        ]
        asked.append(_Asked(w.asked_at, cells))
    asked.sort(key=lambda a: a.at)
    return [QUESTIONS_HEADER, *(_safe(a.cells) for a in asked)]


def _keypad_cells(q: KeypadQuestion, caller: Caller | None) -> list[str]:
    name = (caller.name or caller.caller_name or "") if caller is not None else ""
    return [
        q.asked_at.isoformat(),
        "keypad",
        q.participant_id,
        (caller.number or "") if caller is not None else "",
        name,
        "",
        "",  # asked aloud on the opened line: the transcript has it
        q.outcome,
        _when(q.opened_at),
        _when(q.closed_at),
        _when(q.settled_at),
    ]


def audit_rows(entries: list[LogEntry]) -> list[list[str]]:
    """``audit.csv``'s rows, header first: the call log in the order it happened."""
    out = [AUDIT_HEADER]
    for e in entries:
        detail = json.dumps(e.detail, sort_keys=True, ensure_ascii=False) if e.detail else ""
        out.append(
            _safe(
                [
                    e.at.isoformat(),
                    e.kind.value,
                    e.participant_id or "",
                    e.channel,
                    e.caller_id or "",
                    e.role or "",
                    e.actor,
                    detail,
                ]
            )
        )
    return out


def _csv(record: EventRecord, what: str, rows: list[list[str]]) -> Response:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    filename = f"{record.company.ticker.lower()}-event-{record.id}-{what}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/attendance.csv", response_class=Response)
async def attendance_csv(event_id: int, store: Store, request: Request, _: OperatorDep) -> Response:
    """Per participant, phone and web: number and name, join, leave, live and replay seconds.

    A phone caller's ``caller_id`` is the number the trunk asserted
    (P-Asserted-Identity, else the From URI's user), blank when none was;
    ``caller_name`` is what their phone sent; ``name`` the moderator's name
    for them. Web listeners' seconds are what their page played, the live
    call and the replay apart (``live_seconds``, ``replay_seconds``).
    ``email_consent`` says what a registrant agreed to be emailed and when
    ("reminders and replay notice (…)", "confirmation only (…)"), and when
    they unsubscribed.
    """
    record = await run_in_threadpool(store.get, event_id)
    log: CallLog = request.app.state.call_log
    people: Audience = request.app.state.audience
    entries = await run_in_threadpool(log.entries, event_id)
    rows = await run_in_threadpool(log.attendance, event_id)
    web = await run_in_threadpool(people.listeners, event_id)
    outbox: Outbox = request.app.state.mail.outbox
    consents = await run_in_threadpool(outbox.consents, event_id)
    return _csv(record, "attendance", attendance_rows(rows, entries, web, consents))


@router.get("/questions.csv", response_class=Response)
async def questions_csv(event_id: int, store: Store, request: Request, _: OperatorDep) -> Response:
    """Every question, ``*1`` and written, with when it was asked, its line opened and closed."""
    record = await run_in_threadpool(store.get, event_id)
    log: CallLog = request.app.state.call_log
    entries = await run_in_threadpool(log.entries, event_id)
    written = await run_in_threadpool(QuestionStore(store.database).of_event, event_id)
    return _csv(record, "questions", question_rows(entries, written))


@router.get("/audit.csv", response_class=Response)
async def audit_csv(event_id: int, store: Store, request: Request, _: OperatorDep) -> Response:
    """The audit trail as CSV: every join, leave, name, queue move, moderator action, refusal."""
    record = await run_in_threadpool(store.get, event_id)
    log: CallLog = request.app.state.call_log
    entries = await run_in_threadpool(log.entries, event_id)
    return _csv(record, "audit", audit_rows(entries))
