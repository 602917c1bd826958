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

The call log is written in batches by one task (``write_log``), from a
bounded queue: a flood fills the queue, never the loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from callbridge.bridge.commands import CallerKind, RecordAudit, Registrant
from callbridge.bridge.control import BridgeError
from callbridge.bridge.lobby import DialPlanRead, Found, Matched, MatchPasscode
from callbridge.events.schema import EventRecord, EventState
from callbridge.media import priority
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.events import DialPlan, EventNotFound, EventStore, PasscodeMatch
from callbridge.store.pins import PIN_DIGITS, PinBook
from callbridge.store.questions import QuestionStore

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a read made for a joining caller serves the next ones.
JOIN_RECORD_TTL = 2.0
# Cached entries beyond this are all dropped (a flood of distinct numbers or codes).
MAX_CACHED = 10_000


class Lookups:
    """The store as the bridge's loop uses it: on one thread, with short-lived caches."""

    def __init__(
        self,
        events: EventStore,
        call_log: CallLog,
        now: Callable[[], float],
        pins: PinBook | None = None,
    ) -> None:
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
        self._log_queue: asyncio.Queue[LogEntry] = asyncio.Queue(maxsize=100_000)
        self._pending: set[asyncio.Task[None]] = set()  # held so they are not collected

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
            return await self.run(self.events.get, event_id)
        except EventNotFound:
            raise BridgeError(f"there is no event {event_id}") from None

    async def join_record(self, event_id: int) -> EventRecord:
        """The event as a joining caller's checks need it (windows, state), at most 2 s old."""
        now = self._now()
        cached = self._records.get(event_id)
        if cached is not None and now - cached[0] < JOIN_RECORD_TTL:
            return cached[1]
        record = await self.run(self.events.get, event_id)
        self._records[event_id] = (now, record)
        return record

    async def match_passcode(self, dialled: str | None, passcode: str) -> PasscodeMatch | None:
        """What ``passcode`` opens on ``dialled``; a match is remembered for JOIN_RECORD_TTL."""
        now = self._now()
        key = (dialled, passcode)
        cached = self._matches.get(key)
        if cached is not None and now - cached[0] < JOIN_RECORD_TTL:
            return cached[1]
        match = await self.run(self.events.match_passcode, dialled, passcode)
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
        plan = await self.run(self._plan_with_pins, dialled)
        if len(self._dial_plans) > MAX_CACHED:
            self._dial_plans.clear()
        self._dial_plans[dialled] = (now, plan)
        return plan

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
        pin = await self.run(self.pins.match, command.dialled, command.passcode)
        if pin is None:
            return Matched(command.call_id, None)
        record = await self.join_record(pin.event_id)
        registrant = Registrant(pin.listener_id, pin.name, pin.firm, pin.email)
        found = Found(pin.event_id, CallerKind.REGISTRANT, record, registrant=registrant)
        return Matched(command.call_id, found)

    async def set_state(self, event_id: int, state: EventState) -> None:
        """Write the event's state; what joining callers saw of it is forgotten."""
        await self.run(self.events.set_state, event_id, state)
        self._records.pop(event_id, None)
        if state is EventState.ENDED:
            self._matches.clear()

    def settle_question(self, question_id: str, state: str, at: datetime) -> None:
        """Store where a written question stands, in the background."""
        questions = QuestionStore(self.events.database)
        task = asyncio.get_running_loop().create_task(
            self.run(questions.settle, question_id, state, at)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

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
        """Queue ``entry`` for the call log (``write_log`` writes it)."""
        try:
            self._log_queue.put_nowait(entry)
        except asyncio.QueueFull:
            log.error("call log queue full; dropped %s", entry.kind.value)

    async def write_log(self) -> None:
        """Write the queued entries in batches, for ever (run as a task)."""
        while True:
            first = await self._log_queue.get()
            batch = [first]
            while not self._log_queue.empty() and len(batch) < 500:
                batch.append(self._log_queue.get_nowait())
            try:
                await self.run(self.call_log.append, batch)
            except Exception:
                log.exception("could not write %d call log entries", len(batch))

    async def flush_log(self) -> None:
        """Write the queued entries now."""
        batch: list[LogEntry] = []
        while not self._log_queue.empty():
            batch.append(self._log_queue.get_nowait())
        if batch:
            await self.run(self.call_log.append, batch)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
