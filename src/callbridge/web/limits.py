"""How often one address, or everyone on one event, may do what a script could pile up.

A browser's own limits (one question every 20 s, ten a call; a beacon every
2 s) hold per cookie, and a fresh cookie costs nothing: registering again,
or clearing cookies, gives a script a new browser. So the web app also
counts per client address (``throttle.source_key``: an IPv6 client by its
/64) and per event, in memory, with token buckets (``throttle.RateLimit``):

- written questions: ``QUESTIONS_PER_ADDRESS`` per event and address, and
  ``QUESTIONS_PER_EVENT`` from everyone;
- registrations: ``REGISTRATIONS_PER_ADDRESS`` per event and address, and
  ``REGISTRATIONS_PER_EVENT``;
- browser ids (the signed cookie an anonymous listener's beacons count
  under): ``BROWSER_IDS_PER_ADDRESS`` per address, whatever the event.

The bursts leave room for an office behind one address (a bank's analysts
register at the top of the hour); past them one address gets one more per
interval, which is what a person does and far less than a script wants.
A refusal is a 429 whose ``Retry-After`` is when the next would pass. The
counts live in the web process: a restart forgets them (it also takes
longer than any of these waits).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from callbridge.throttle import Rate, RateLimit
from callbridge.web.throttle import source_key

QUESTIONS_PER_ADDRESS = Rate(burst=3, every=20.0)
QUESTIONS_PER_EVENT = Rate(burst=60, every=2.0)
REGISTRATIONS_PER_ADDRESS = Rate(burst=20, every=6.0)
REGISTRATIONS_PER_EVENT = Rate(burst=500, every=0.1)
BROWSER_IDS_PER_ADDRESS = Rate(burst=20, every=6.0)


def client_source(request: Request) -> str:
    """The key of the request's client address (as the trusted cache names it)."""
    return source_key(request.client.host if request.client else "unknown")


@dataclass(frozen=True)
class Refused:
    """Too many: say so, and when to try again."""

    message: str
    retry_after: float


class _Pair:
    """One limit per (event, address) and one per event; both must pass, or neither is spent."""

    def __init__(self, per_address: Rate, per_event: Rate, what: str) -> None:
        self.per_address = RateLimit(per_address)
        self.per_event = RateLimit(per_event)
        self.what = what

    def take(self, event_id: int, source: str, now: float) -> Refused | None:
        mine = self.per_address.wait((event_id, source), now)
        everyone = self.per_event.wait(event_id, now)
        if mine > 0:
            return Refused(f"too many {self.what} from your network just now", mine)
        if everyone > 0:
            return Refused(f"too many {self.what} on this webcast just now", everyone)
        self.per_address.take((event_id, source), now)
        self.per_event.take(event_id, now)
        return None

    def give_back(self, event_id: int, source: str, now: float) -> None:
        self.per_address.give_back((event_id, source), now)
        self.per_event.give_back(event_id, now)


class WebLimits:
    """The app's counts (``app.state.limits``); call from the event loop only."""

    def __init__(
        self,
        questions: tuple[Rate, Rate] = (QUESTIONS_PER_ADDRESS, QUESTIONS_PER_EVENT),
        registrations: tuple[Rate, Rate] = (REGISTRATIONS_PER_ADDRESS, REGISTRATIONS_PER_EVENT),
        browser_ids: Rate = BROWSER_IDS_PER_ADDRESS,
    ) -> None:
        self.questions = _Pair(*questions, what="questions")
        self.registrations = _Pair(*registrations, what="registrations")
        self._browser_ids = RateLimit(browser_ids)

    def browser_id(self, source: str, now: float) -> Refused | None:
        """Whether a new browser id may go to ``source`` now (and it is counted)."""
        wait = self._browser_ids.take(source, now)
        if wait > 0:
            return Refused("too many new listeners from your network just now", wait)
        return None
