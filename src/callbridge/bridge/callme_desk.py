"""Call me, on the media plane: the guard's decisions carried out (glue).

The web app asks over the control channel (``control.server``'s
``call_me``, ``call_me_state``, ``call_me_switch``); this desk asks the pure
guard (``bridge.callme.CallMeGuard``), audits every refusal in the call log,
and has ``DialOut`` place the calls it allows, as the registrant (role
REGISTRANT: on '1' the lobby admits them as their personal PIN would). The
guard lives here, in the one media-plane process, so its limits hold
whatever number of web processes ask. A dial's progress comes from
``DialOut.on_state``; "joined" is the controller's (the callee pressed 1 and
is a member of the call).

A call the controller would not admit (too early, or over: its window) is
not placed: the registrant could not join it, and the bridge would pay for it.

The operator's switch (call-me off for an event) is held in memory here,
not in the event's row: it lasts as long as the media plane.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from callbridge.bridge.callme import Allowed, CallMeGuard, CallMeRules, Reason, Refused
from callbridge.bridge.commands import AuditKind, CallerKind, RecordAudit, Registrant
from callbridge.bridge.control import BridgeError
from callbridge.bridge.dialout import DialOut
from callbridge.events.schema import EventRecord
from callbridge.ivr.window import Window, WindowRules, conference_window

log = logging.getLogger(__name__)


class CallMeDesk:
    """Takes call-me requests for every event of this media plane."""

    def __init__(
        self,
        rules: CallMeRules,
        dialout: DialOut,
        record: Callable[[int], Awaitable[EventRecord]],
        joined: Callable[[str], bool],
        audit: Callable[[RecordAudit], None],
        window: WindowRules,
    ) -> None:
        self.guard = CallMeGuard(rules)
        self.window = window  # the controller's: a call it would not admit is not placed
        self.dialout = dialout
        self.record = record
        self.joined = joined  # whether a dial's callee is on the call (pressed 1)
        self.audit = audit
        previous = dialout.on_state

        def on_state(dial_id: str, state: str) -> None:
            self.guard.settled(dial_id, state)
            if previous is not None:
                previous(dial_id, state)

        dialout.on_state = on_state

    async def request(
        self, event_id: int, registrant: Registrant, number: str, source: str = ""
    ) -> dict[str, Any]:
        """A registrant's request: ``{"dial_id", "number"}``, or ``{"refused": {...}}``.

        The refusal carries the HTTP status (409 off or not possible, 422 a
        number not allowed, 429 a limit), the message, the field and
        ``retry_after``. ``BridgeError`` only for an event that does not exist.
        """
        record = await self.record(event_id)
        now = asyncio.get_running_loop().time()
        window = conference_window(
            record.starts_at,
            timedelta(minutes=record.duration_minutes),
            record.state,
            datetime.now(UTC),
            self.window,
        )
        decision: Allowed | Refused
        if window is Window.CLOSED:
            decision = Refused(Reason.UNAVAILABLE, "the call is over")
        elif window is Window.TOO_EARLY:
            minutes = int(self.window.opens_before.total_seconds() // 60)
            decision = Refused(
                Reason.UNAVAILABLE,
                f"the call opens {minutes} minutes before it starts; ask for a call then",
            )
        else:
            dial_in = [d.number for d in record.dial_in]
            decision = self.guard.request(
                event_id, registrant.listener_id, number, dial_in, now, source
            )
        if isinstance(decision, Refused):
            return self._refused(event_id, registrant, number, decision, source)
        try:
            dial_id = await self.dialout.dial(
                event_id,
                decision.number,
                CallerKind.REGISTRANT,
                # By id, not name: the log's actor is short, and a deleted registrant's
                # name must not outlive them here (the exports anonymise by id).
                actor=f"call-me: registrant {registrant.listener_id}",
                registrant=registrant,
            )
        except BridgeError as error:
            self.guard.given_back(event_id, registrant.listener_id)
            unavailable = Refused(Reason.UNAVAILABLE, str(error))
            return self._refused(event_id, registrant, number, unavailable, source)
        self.guard.placed(event_id, registrant.listener_id, dial_id)
        return {"dial_id": dial_id, "number": decision.number}

    def _refused(
        self, event_id: int, registrant: Registrant, number: str, refused: Refused, source: str
    ) -> dict[str, Any]:
        log.info(
            "call-me for registrant %d of event %d refused (%s): %s",
            registrant.listener_id,
            event_id,
            refused.reason.value,
            refused.message,
        )
        self.audit(
            RecordAudit(
                AuditKind.CALL_ME_REFUSED,
                datetime.now(UTC),
                event_id,
                caller_id=number[:32],
                actor=f"registrant {registrant.listener_id}",
                detail={
                    "registrant": registrant.listener_id,
                    "source": source,
                    "reason": refused.reason.value,
                    "status": refused.status,
                    "message": refused.message,
                },
            )
        )
        return {
            "refused": {
                "status": refused.status,
                "message": refused.message,
                "field": refused.field,
                "retry_after": refused.retry_after,
            }
        }

    def state(self, dial_id: str) -> dict[str, Any] | None:
        """A call-me dial's progress and whose it is; None for a dial that is no call-me.

        ``state``: calling, ringing, answered (they hear "press 1"), joined,
        failed (``detail`` says why), ended.
        """
        owner = self.guard.owner(dial_id)
        if owner is None:
            return None
        raw = self.dialout.state(dial_id) or "calling"
        state, _, detail = raw.partition(": ")
        if state == "answered" and self.joined(dial_id):
            state = "joined"
        return {"event_id": owner[0], "registrant": owner[1], "state": state, "detail": detail}

    def switch(self, event_id: int, enabled: bool, actor: str) -> bool:
        """The operator turns call-me on or off for the event (audited); returns the setting."""
        if self.guard.enabled(event_id) != enabled:
            self.guard.switch(event_id, enabled)
            self.audit(
                RecordAudit(
                    AuditKind.CALL_ME_SWITCHED,
                    datetime.now(UTC),
                    event_id,
                    actor=actor,
                    detail={"enabled": enabled},
                )
            )
        return self.guard.enabled(event_id)

    def enabled(self, event_id: int) -> bool:
        return self.guard.enabled(event_id)
