"""The bridge's store: its one database thread, what it reads cached, the call log's writer.

Every read and write the media plane makes goes through ``Lookups`` on one
thread: every thread that runs Python competes with the loop (and the media
clocks) for the GIL, and a burst of callers keying passcodes kept six of
them busy (100 ms stalls). A burst of callers joining one event reads the
event, the passcode's match and the number's dial plan once, not once
each: they are kept ``JOIN_RECORD_TTL`` seconds (a passcode changed
meanwhile opens for that long still). Starting and ending the call forget
them at once.

A code that is no passcode may be a registrant's personal PIN
(``store.pins``, when the bridge has the PIN key): looked up by its keyed
hash, never cached (each names one caller). A number whose events have
given PINs has ``PIN_DIGITS`` among its code lengths.

Every write goes through the journal (``bridge.journal``): on local disk
first, then to the database by one task (``write_log``), so a database that
goes away mid-call loses nothing and doubles nothing. While it is away
(``bridge.outage``) reads are not tried: a joining caller's code is matched
against the live calls' passcodes and PINs as last read (``CodeBook``: read
when a call starts here and every ``REFRESH_INTERVAL`` while the database
answers), and the dial plan is the last one read, so callers are still
admitted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from callbridge.bridge.commands import CallerKind, RecordAudit, Registrant
from callbridge.bridge.control import BridgeError
from callbridge.bridge.journal import (
    Journal,
    JournalWriter,
    Kind,
    log_body,
    settle_body,
    state_body,
    unreachable,
)
from callbridge.bridge.lobby import DialPlanRead, Found, Matched, MatchPasscode
from callbridge.bridge.outage import REFRESH_INTERVAL, CodeBook, KeptPin, Outcome
from callbridge.events.schema import EventRecord, EventState
from callbridge.media import priority
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.events import DialPlan, EventNotFound, EventStore, PasscodeMatch
from callbridge.store.pins import PIN_DIGITS, PinBook, PinMatch

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a read made for a joining caller serves the next ones.
JOIN_RECORD_TTL = 2.0
# Cached entries beyond this are all dropped (a flood of distinct numbers or codes).
MAX_CACHED = 10_000
# Writes handed in but not yet journalled beyond this are dropped (a flood; logged).
MAX_QUEUED = 100_000


class Unreachable(BridgeError):
    """The database is unreachable and nothing kept answers."""


class Lookups:
    """The store as the bridge's loop uses it: on one thread, with short-lived caches."""

    def __init__(
        self,
        events: EventStore,
        call_log: CallLog,
        now: Callable[[], float],
        pins: PinBook | None = None,
        journal: Path | None = None,
        on_link: Callable[[bool], None] = lambda up: None,
    ) -> None:
        """``journal``: the journal file (``store.layout.journal``); None keeps it in memory."""
        self.events = events
        self.pins = pins  # None: no personal PINs (no PIN key given)
        self.call_log = call_log
        self._now = now
        self._thread = ThreadPoolExecutor(
            1, thread_name_prefix="callbridge-db", initializer=priority.as_media_worker
        )
        self._records: dict[int, tuple[float, EventRecord]] = {}
        self._matches: dict[tuple[str | None, str], tuple[float, PasscodeMatch]] = {}
        self._dial_plans: dict[str | None, tuple[float, DialPlan]] = {}
        self._pending: set[asyncio.Task[None]] = set()  # held so they are not collected
        # The live calls' codes and PINs, and the last dial plan of each number, as
        # the database last gave them: the answers while it is away.
        self.book = CodeBook()
        self._last_plans: dict[str | None, DialPlan] = {}
        self.writer = JournalWriter(
            Journal(journal), call_log, events, self.run, now, on_link=on_link
        )

    @property
    def database_up(self) -> bool:
        return self.writer.reachability.up

    async def _read(self, fallback: Callable[[], T], call: Callable[..., T], *args: object) -> T:
        """``call(*args)`` on the database thread; ``fallback()`` while it is unreachable."""
        if not self.writer.reachability.may_read():
            return fallback()
        try:
            answer = await self.run(call, *args)
        except Exception as error:
            if not unreachable(error):
                raise
            self.writer.tried(Outcome.UNREACHABLE)
            return fallback()
        self.writer.tried(Outcome.SUCCEEDED)
        return answer

    def _kept_record(self, event_id: int) -> EventRecord:
        kept = self.book.records.get(event_id)
        if kept is None:
            cached = self._records.get(event_id)
            if cached is None:
                raise Unreachable(f"the database is unreachable and event {event_id} is not kept")
            kept = cached[1]
        return kept

    async def run(self, call: Callable[..., T], *args: object) -> T:
        """``call(*args)`` on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(call, *args))

    def run_blocking(self, call: Callable[..., T], *args: object, timeout: float = 5.0) -> T:
        """``call(*args)`` on the database thread, from another thread (waits for it)."""
        return self._thread.submit(call, *args).result(timeout=timeout)

    async def record(self, event_id: int) -> EventRecord:
        """The event as it is in the store now; ``BridgeError`` if there is none."""
        try:
            record = await self._read(
                lambda: self._kept_record(event_id), self.events.get, event_id
            )
        except EventNotFound:
            raise BridgeError(f"there is no event {event_id}") from None
        if event_id in self.book.records:
            self.book.keep(record)
        return record

    async def join_record(self, event_id: int) -> EventRecord:
        """The event as a joining caller's checks need it (windows, state), at most 2 s old."""
        now = self._now()
        cached = self._records.get(event_id)
        if cached is not None and now - cached[0] < JOIN_RECORD_TTL:
            return cached[1]
        record = await self._read(lambda: self._kept_record(event_id), self.events.get, event_id)
        self._records[event_id] = (now, record)
        if event_id in self.book.records:
            self.book.keep(record)
        return record

    async def match_passcode(self, dialled: str | None, passcode: str) -> PasscodeMatch | None:
        """What ``passcode`` opens on ``dialled``; a match is remembered for JOIN_RECORD_TTL."""
        now = self._now()
        key = (dialled, passcode)
        cached = self._matches.get(key)
        if cached is not None and now - cached[0] < JOIN_RECORD_TTL:
            return cached[1]
        match = await self._read(
            lambda: self._kept_match(dialled, passcode),
            self.events.match_passcode,
            dialled,
            passcode,
        )
        if match is not None:
            if len(self._matches) > MAX_CACHED:
                self._matches.clear()
            self._matches[key] = (now, match)
        return match

    async def dial_plan(self, dialled: str | None) -> DialPlan:
        """The events and code lengths on ``dialled``, at most JOIN_RECORD_TTL seconds old."""
        now = self._now()
        cached = self._dial_plans.get(dialled)
        if cached is not None and now - cached[0] < JOIN_RECORD_TTL:
            return cached[1]
        plan = await self._read(lambda: self._kept_plan(dialled), self._plan_with_pins, dialled)
        if len(self._dial_plans) > MAX_CACHED:
            self._dial_plans.clear()
            self._last_plans.clear()
        self._dial_plans[dialled] = (now, plan)
        self._last_plans[dialled] = plan
        return plan

    def _kept_match(self, dialled: str | None, passcode: str) -> PasscodeMatch | None:
        found = self.book.match(dialled, passcode)
        return None if found is None else PasscodeMatch(found.event_id, found.role)

    def _kept_plan(self, dialled: str | None) -> DialPlan:
        """The number's last plan read; else the kept calls' (a number first dialled now)."""
        last = self._last_plans.get(dialled)
        if last is not None:
            return last
        ids, lengths, phones = self.book.plan(dialled)
        if self.pins is not None and self.book.has_pins(ids):
            lengths |= {PIN_DIGITS}
        return DialPlan(ids, lengths, phones)

    # -- what is kept for a database outage -------------------------------------------------

    def _codes_of(self, event_id: int) -> tuple[EventRecord, dict[str, KeptPin] | None]:
        """The event and its PINs, read together (the database thread)."""
        record = self.events.get(event_id)
        if self.pins is None:
            return record, None
        pins = {
            digest: KeptPin(m.event_id, m.listener_id, m.name, m.firm, m.email)
            for digest, m in self.pins.of_event(event_id).items()
        }
        return record, pins

    async def keep_codes(self, event_id: int) -> None:
        """Read the event's passcodes and PINs now, to admit its callers without the database."""
        try:
            record, pins = await self._read(lambda: (None, None), self._codes_of, event_id)
        except Exception:
            log.exception("could not keep the codes of event %d", event_id)
            return
        if record is not None:
            self.book.keep(record, pins)

    def keep_codes_soon(self, event_id: int) -> None:
        """``keep_codes`` in the background (a call starts here)."""
        self._background(self.keep_codes(event_id))

    async def refresh_codes(self, live: Callable[[], Iterable[int]]) -> None:
        """Keep the codes of the ``live()`` calls fresh, for ever (run as a task)."""
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            events = set(live())
            for event_id in list(self.book.records):
                if event_id not in events:
                    self.book.forget(event_id)
            if not self.database_up:
                continue
            for event_id in events:
                await self.keep_codes(event_id)

    def _background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _plan_with_pins(self, dialled: str | None) -> DialPlan:
        """The store's dial plan, with the PIN's length where an event on it gave PINs."""
        plan = self.events.dial_plan(dialled)
        if self.pins is None or not self.pins.events_with_pins(plan.event_ids):
            return plan
        return DialPlan(plan.event_ids, plan.code_lengths | {PIN_DIGITS}, plan.speaker_phones)

    async def dial_plan_read(self, call_id: str, dialled: str | None) -> DialPlanRead:
        """The lobby's ``DialPlanRead`` for a new leg (an empty plan if the store could not say)."""
        try:
            plan = await self.dial_plan(dialled)
        except Exception:
            # The IVR still ends codes on '#', silence or 12 digits; nobody is
            # listed, so a refusal stands.
            log.exception("could not read the dial plan of %s", dialled)
            plan = DialPlan((), frozenset())
        return DialPlanRead(call_id, plan.event_ids, plan.code_lengths, plan.speaker_phones)

    async def matched(
        self,
        command: MatchPasscode,
        replay_recording: Callable[[int], tuple[object, datetime] | None],
    ) -> Matched:
        """What the caller's passcode opens, with what admitting them needs to know.

        ``replay_recording(event_id)`` (blocking) says when a replay code's
        recording was ready.
        """
        match = await self.match_passcode(command.dialled, command.passcode)
        if match is None:
            return await self._pin_matched(command)
        record = await self.join_record(match.event_id)
        ready: datetime | None = None
        kind = CallerKind(match.role)
        if kind is CallerKind.REPLAY:
            recording = await asyncio.to_thread(replay_recording, match.event_id)
            ready = recording[1] if recording is not None else None
        return Matched(command.call_id, Found(match.event_id, kind, record, ready))

    async def _pin_matched(self, command: MatchPasscode) -> Matched:
        """What a code that is no passcode opens: a registrant's PIN, or nothing."""
        if self.pins is None:
            return Matched(command.call_id, None)
        pins = self.pins
        pin = await self._read(
            lambda: self._kept_pin(pins, command.dialled, command.passcode),
            pins.match,
            command.dialled,
            command.passcode,
        )
        if pin is None:
            return Matched(command.call_id, None)
        record = await self.join_record(pin.event_id)
        registrant = Registrant(pin.listener_id, pin.name, pin.firm, pin.email)
        found = Found(pin.event_id, CallerKind.REGISTRANT, record, registrant=registrant)
        return Matched(command.call_id, found)

    def _kept_pin(self, pins: PinBook, dialled: str | None, code: str) -> PinMatch | None:
        """The registrant a PIN names, from the kept PINs (checked as ``PinBook.match`` does)."""
        if len(code) != PIN_DIGITS or not code.isascii() or not code.isdigit():
            return None
        kept = self.book.match_pin(dialled, pins.digest(code))
        if kept is None:
            return None
        return PinMatch(kept.event_id, kept.listener_id, kept.name, kept.firm, kept.email)

    async def set_state(self, event_id: int, state: EventState) -> None:
        """Write the event's state; what joining callers saw of it is forgotten.

        While the database is unreachable the move is journalled (written when
        it is back) and the kept record moves at once.
        """
        journalled = False

        def journal() -> None:
            nonlocal journalled
            journalled = True
            self.writer.put(Kind.STATE, state_body(event_id, state))

        await self._read(journal, self.events.set_state, event_id, state)
        kept = self.book.records.get(event_id)
        if kept is not None:
            self.book.keep(kept.model_copy(update={"state": state}))
        if journalled:
            cached = self._records.get(event_id)
            if cached is not None:
                self._records[event_id] = (cached[0], cached[1].model_copy(update={"state": state}))
        else:
            self._records.pop(event_id, None)
        if state is EventState.ENDED:
            self._matches.clear()

    def settle_question(self, question_id: str, state: str, at: datetime) -> None:
        """Store where a written question stands (through the journal)."""
        self.writer.put(Kind.SETTLE, settle_body(question_id, state, at))

    # -- the call log --------------------------------------------------------------------

    def audit(self, row: RecordAudit) -> None:
        """Queue the controller's or the lobby's audit row for the call log."""
        self.log(
            LogEntry(
                LogKind(row.kind.value),
                row.at,
                row.event_id,
                row.participant_id,
                caller_id=row.caller_id,
                role=row.role,
                actor=row.actor,
                detail=dict(row.detail),
            )
        )

    def log(self, entry: LogEntry) -> None:
        """Journal ``entry`` for the call log (``write_log`` writes it)."""
        if self.writer.waiting - self.writer.depth >= MAX_QUEUED:
            log.error("call log queue full; dropped %s", entry.kind.value)
            return
        self.writer.put(Kind.LOG, log_body(entry))

    async def write_log(self) -> None:
        """Journal and write the queued writes, for ever (run as a task)."""
        await self.writer.run()

    async def flush_log(self) -> None:
        """Write the queued writes now (those the database cannot take stay journalled)."""
        await self.writer.flush()

    async def close_journal(self) -> None:
        await self.writer.close()

    def close(self) -> None:
        self._thread.shutdown(wait=True)
