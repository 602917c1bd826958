"""What is written to the outbox: confirmations as people register, reminders and replay notices
as their time comes.

``MailDesk`` is what the web app calls when someone registers: it records
their consent and enqueues the confirmation. ``Planner.plan(now)`` runs
every few seconds beside the sender (``worker``): for each event with
registrants who agreed to follow-ups, it enqueues the reminder
``core.reminder_due`` names and, once the replay is packaged and open, the
replay notice. Each message has a dedupe key (``reminder:w17:1440``), so
planning again, in this process or another, enqueues nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from callbridge.announce.render import release_of
from callbridge.events.schema import EventRecord, EventState
from callbridge.mail import compose
from callbridge.mail.compose import Letterhead
from callbridge.mail.core import parse_offsets, reminder_due
from callbridge.store.events import EventNotFound, EventStore
from callbridge.store.outbox import MailKind, NewMail, Outbox, Recipient

log = logging.getLogger(__name__)

# The words next to the registration form's checkbox; stored with each consent as shown.
# Messages rendered before they are written (one transaction each).
CHUNK = 500
# How far back the planner looks for registrants whose confirmation a crash lost.
CONFIRM_WITHIN = timedelta(hours=1)

CONSENT_WORDING = "Email me a reminder before the call and a note when the replay is ready."


def follow_ups_offered(outbox: Outbox, event_id: int) -> bool:
    """Whether the event sends reminders or a replay notice (the form then asks for consent)."""
    settings = outbox.settings(event_id)
    return bool(parse_offsets(settings.reminders)) or settings.replay


class MailDesk:
    """Registrations' mail: consent recorded, confirmation written to the outbox.

    ``sending`` is False when no relay is configured: consent is still
    recorded, but nothing is enqueued that nothing would send.
    ``on_enqueued`` wakes the sender in this process.
    """

    def __init__(
        self,
        outbox: Outbox,
        letterhead: Letterhead | None,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self.outbox = outbox
        self.letterhead = letterhead
        self.on_enqueued = on_enqueued

    @property
    def sending(self) -> bool:
        return self.letterhead is not None

    def registered(
        self,
        record: EventRecord,
        listener_id: int,
        *,
        follow_up: bool,
        now: datetime,
        pin: str | None = None,
    ) -> bool:
        """Someone registered: keep what they agreed to; enqueue their confirmation.

        Returns whether a confirmation was enqueued.
        """
        offered = follow_ups_offered(self.outbox, record.id)
        self.outbox.record_consent(
            listener_id, record.id, follow_up and offered, CONSENT_WORDING if offered else "", now
        )
        if self.letterhead is None or not self.outbox.settings(record.id).confirmation:
            return False
        recipient = self.outbox.recipient(listener_id)
        if recipient is None:
            return False
        mail = compose.confirmation(record, recipient, self.letterhead, now, pin=pin)
        added = self.outbox.enqueue([mail], now)
        if added:
            self.on_enqueued()
        return bool(added)


class Planner:
    """Finds the reminders and replay notices that are due and enqueues them; IO, ``now`` given.

    ``replay_ready(event_id)`` says whether the event's replay is packaged.
    """

    def __init__(
        self,
        outbox: Outbox,
        events: EventStore,
        letterhead: Letterhead,
        replay_ready: Callable[[int], bool],
    ) -> None:
        self.outbox = outbox
        self.events = events
        self.letterhead = letterhead
        self.replay_ready = replay_ready

    def plan(self, now: datetime) -> int:
        """Enqueue what has come due by ``now``; returns how many messages were written."""
        states = [EventState.SCHEDULED.value, EventState.ENDED.value]
        written = self._missed_confirmations(now)
        for event_id in self.outbox.events_to_plan(states):
            try:
                record = self.events.get(event_id)
            except EventNotFound:
                continue
            try:
                # Rendered and written a chunk at a time: ten thousand messages are never
                # in memory at once, and what was written stays written if one fails.
                chunk: list[NewMail] = []
                for mail in self._due(record, now):
                    chunk.append(mail)
                    if len(chunk) >= CHUNK:
                        written += self.outbox.enqueue(chunk, now)
                        chunk = []
                written += self.outbox.enqueue(chunk, now)
            except Exception:
                # One event's bad data (a template error) must not stop every other's mail.
                log.exception("planning the mail of event %d failed", event_id)
        return written

    def _missed_confirmations(self, now: datetime) -> int:
        """Confirmations for the last ``CONFIRM_WITHIN`` of registrants that have none.

        The web request enqueues each as it registers someone; a crash between
        the two writes would leave that registrant without one. Only recent
        registrants: turning ``--smtp`` on does not confirm last month's.
        """
        live = [EventState.SCHEDULED.value, EventState.LIVE.value]
        written = 0
        records: dict[int, EventRecord | None] = {}
        for recipient in self.outbox.unconfirmed(now - CONFIRM_WITHIN, live):
            if recipient.event_id not in records:
                try:
                    records[recipient.event_id] = self.events.get(recipient.event_id)
                except EventNotFound:
                    records[recipient.event_id] = None
            record = records[recipient.event_id]
            if record is None or not self.outbox.settings(record.id).confirmation:
                continue
            mail = compose.confirmation(record, recipient, self.letterhead, now)
            written += self.outbox.enqueue([mail], now)
        return written

    def _due(self, record: EventRecord, now: datetime) -> Iterator[NewMail]:
        settings = self.outbox.settings(record.id)
        if record.state is EventState.SCHEDULED:
            offsets = parse_offsets(settings.reminders)
            if not offsets:
                return iter(())
            return self._reminders(record, offsets, now)
        if (
            settings.replay
            and record.state is EventState.ENDED
            and record.replay_available(now)
            and self.replay_ready(record.id)
        ):
            return self._replay_notices(record, now)
        return iter(())

    def _reminders(
        self, record: EventRecord, offsets: tuple[int, ...], now: datetime
    ) -> Iterator[NewMail]:
        due: list[tuple[Recipient, int]] = []
        for recipient in self.outbox.consenting(record.id):
            minutes = reminder_due(record.starts_at, offsets, recipient.registered_at, now)
            if minutes is not None:
                due.append((recipient, minutes))
        if not due:
            return iter(())
        done = self.outbox.enqueued_keys(record.id, MailKind.REMINDER)
        release = release_of(record, self.letterhead.public_url)
        return (
            compose.reminder(record, recipient, minutes, self.letterhead, now, release)
            for recipient, minutes in due
            if compose.reminder_key(recipient.listener_id, minutes) not in done
        )

    def _replay_notices(self, record: EventRecord, now: datetime) -> Iterator[NewMail]:
        done = self.outbox.enqueued_keys(record.id, MailKind.REPLAY)
        release = release_of(record, self.letterhead.public_url)
        return (
            compose.replay_ready(record, recipient, self.letterhead, now, release)
            for recipient in self.outbox.consenting(record.id)
            if compose.replay_key(recipient.listener_id) not in done
        )
