"""Written questions: a registered web listener asks; operators read them and export them.

The question is stored first (``store.questions``: its rules, its row), then
handed to the media plane's call controller, which puts it in the call's
queue beside the ``*1`` callers; the moderator takes it from the console
(``read_out``, ``answer``, ``dismiss``, ``move_question``).

The listener's request carries their webcast cookie and a JSON body: a
cross-site form cannot send JSON without the browser asking first, and the
cookie is SameSite=Lax, so no CSRF token is needed here.

A question passes the browser's own limits (the store's), then its
address's and the event's (``web.limits``: registering again gives a new
browser, not a new address); one the store then refuses gives those back.
The moderator can silence an asker (``…/questions/{id}/silence``, from the
console's row of their question): their further questions are refused with
a 403 that says so, and the audit trail has who did it.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from callbridge.bridge.control import BridgeError
from callbridge.events.schema import EventState
from callbridge.store.questions import (
    MAX_TEXT,
    SILENCED,
    QuestionNotFound,
    QuestionRefused,
    QuestionStore,
    WrittenQuestion,
)
from callbridge.web.calls import BridgeDep, OperatorDep, Store
from callbridge.web.limits import WebLimits, client_source
from callbridge.web.webcast import AudienceDep, Now, listener_token

router = APIRouter(prefix="/api/events/{event_id}/questions", tags=["questions"])


class Ask(BaseModel):
    # The bound is the store's after tidying; this one only keeps a flood of bytes out.
    text: str = Field(max_length=4 * MAX_TEXT)


class QuestionView(BaseModel):
    id: str
    name: str
    firm: str | None
    text: str
    asked_at: datetime
    state: str
    settled_at: datetime | None


def _refused(error: QuestionRefused) -> HTTPException:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    if error.field is not None:
        detail: object = [{"loc": ["body", error.field], "msg": error.message, "type": "refused"}]
    else:
        detail = error.message
    return HTTPException(error.status, detail, headers=headers)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=QuestionView)
async def ask(
    event_id: int,
    body: Ask,
    request: Request,
    store: Store,
    people: AudienceDep,
    control: BridgeDep,
    now: Now,
) -> QuestionView:
    """A registered listener's question, for the moderator's queue (429 if asked too often)."""
    record = await run_in_threadpool(store.get, event_id)
    token = listener_token(request, event_id)
    listener = await run_in_threadpool(people.identify, event_id, token) if token else None
    if listener is None or not listener.registered:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "register for the webcast to ask a question")
    if record.state is not EventState.LIVE:
        raise HTTPException(status.HTTP_409_CONFLICT, "questions are taken while the call is live")
    questions = QuestionStore(store.database)
    if await run_in_threadpool(questions.is_silenced, listener):
        raise _refused(QuestionRefused(SILENCED, status=403, field=None))
    limits: WebLimits = request.app.state.limits
    source = client_source(request)
    too_many = limits.questions.take(event_id, source, time.monotonic())
    if too_many is not None:
        wait = math.ceil(too_many.retry_after)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{too_many.message}: ask again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    try:
        question = await run_in_threadpool(questions.ask, listener, body.text, now)
    except QuestionRefused as error:
        limits.questions.give_back(event_id, source, time.monotonic())
        raise _refused(error) from None
    try:
        await control.question_written(event_id, question.key, question.asker, question.text)
    except BridgeError as error:
        await run_in_threadpool(questions.settle, question.key, "dismissed", now)
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    return _view(question)


def _view(question: WrittenQuestion) -> QuestionView:
    return QuestionView(
        id=question.key,
        name=question.name,
        firm=question.firm,
        text=question.text,
        asked_at=question.asked_at,
        state=question.state,
        settled_at=question.settled_at,
    )


@router.get("", response_model=list[QuestionView])
async def questions(event_id: int, store: Store, _: OperatorDep) -> list[QuestionView]:
    """Every written question of the event, first asked first, with what became of it."""
    await run_in_threadpool(store.get, event_id)
    found = await run_in_threadpool(QuestionStore(store.database).of_event, event_id)
    return [_view(question) for question in found]


class SilenceView(BaseModel):
    question: str = Field(description="The question whose asker this is")
    name: str
    firm: str | None
    silenced: bool


async def _silence(
    event_id: int, question_id: str, silenced: bool, store: Store, operator: str, now: datetime
) -> SilenceView:
    await run_in_threadpool(store.get, event_id)
    questions = QuestionStore(store.database)
    change = questions.silence if silenced else questions.unsilence
    try:
        question = await run_in_threadpool(
            lambda: change(event_id, question_id, actor=operator, now=now)
        )
    except QuestionNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, error.message) from None
    return SilenceView(
        question=question.key, name=question.name, firm=question.firm, silenced=silenced
    )


@router.post("/{question_id}/silence", response_model=SilenceView)
async def silence(
    event_id: int, question_id: str, store: Store, operator: OperatorDep, now: Now
) -> SilenceView:
    """Refuse further written questions from whoever asked ``question_id`` ("q17"); audited.

    Their questions already in the queue stay there (dismiss them as usual).
    Whoever registers again on this event with the same email stays silenced.
    """
    return await _silence(event_id, question_id, True, store, operator.name, now)


@router.delete("/{question_id}/silence", response_model=SilenceView)
async def unsilence(
    event_id: int, question_id: str, store: Store, operator: OperatorDep, now: Now
) -> SilenceView:
    """Take questions from that asker again; audited."""
    return await _silence(event_id, question_id, False, store, operator.name, now)
