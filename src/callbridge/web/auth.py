"""Who may change what: operator sessions, bearer tokens and CSRF tokens.

The public reads events, announcements and webcast pages. Everything that
changes an event, and every moderator action, needs an operator: the console
by a signed session cookie, scripts by ``Authorization: Bearer``. A request
that rides on the cookie and changes state must also carry the session's
CSRF token (a form field, or the ``X-CSRF-Token`` header from the console's
scripts), so another site cannot make an operator's browser act.

The cookie holds a session secret, not the operator: the session lives in
the database (``UserStore.open_session``), so logout, ``callbridge user
revoke`` and a password change end it whatever the browser keeps. A login
attempt first passes the ``LoginThrottle`` (429 with ``Retry-After`` when an
address, or a name from that address, has failed too often; a wait of at
most ``MAX_HOLD`` seconds before the check when the name is under attack
from elsewhere, never a lock) and then the bounded argon2 pool (503 at once
when it is full), so a login flood costs neither memory nor the event loop.
A browser that logged in before carries a signed cookie
(``KNOWN_BROWSER_COOKIE``, the operator's name) that spares it that wait.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from callbridge.store.events import StoreError
from callbridge.store.users import MAX_PASSWORD, MIN_PASSWORD, Operator, UserStore
from callbridge.web.deps import TEMPLATES, settings, user_store
from callbridge.web.throttle import LoginThrottle
from callbridge.web.throttle import Refused as Locked
from callbridge.web.workpool import BoundedPool, PoolBusy

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
KNOWN_BROWSER_COOKIE = "callbridge_known"
KNOWN_BROWSER_DAYS = 90

router = APIRouter(include_in_schema=False)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use; put it in every form."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_valid(request: Request, supplied: str | None) -> bool:
    expected = request.session.get("csrf")
    return (
        isinstance(expected, str)
        and supplied is not None
        and hmac.compare_digest(expected.encode(), supplied.encode())
    )


async def optional_operator(request: Request) -> Operator | None:
    """The operator behind this request (token or session), or None for the public."""
    users: UserStore = request.app.state.users
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        operator = await run_in_threadpool(users.check_token, header[7:].strip())
        if operator is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "the bearer token is not valid",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.auth = "token"
        return operator
    secret = request.session.get("sid")
    if not isinstance(secret, str):
        return None
    operator = await run_in_threadpool(users.check_session, secret)
    if operator is None:
        request.session.clear()
        return None
    request.state.auth = "session"
    return operator


async def require_operator(
    request: Request, operator: Annotated[Operator | None, Depends(optional_operator)]
) -> Operator:
    """For API routes: 401 without an operator, 403 for a cookie request without CSRF."""
    if operator is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "log in as an operator or send a bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if (
        request.method not in SAFE_METHODS
        and getattr(request.state, "auth", None) == "session"
        and not csrf_valid(request, request.headers.get(CSRF_HEADER))
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER} header")
    return operator


class LoginRequired(Exception):
    """Raised by page routes; the app turns it into a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def require_operator_page(
    request: Request, operator: Annotated[Operator | None, Depends(optional_operator)]
) -> Operator:
    """For console pages: redirect the public to the login page instead of a 401."""
    if operator is None:
        raise LoginRequired(request.url.path)
    return operator


def login_redirect(next_url: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(next_url)}", status.HTTP_303_SEE_OTHER)


def _safe_next(next_url: str | None) -> str:
    # Only local paths: an open redirect after login is a phishing aid.
    if next_url and next_url.startswith("/") and not next_url.startswith("//"):
        return next_url
    return "/console"


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> Response:
    return TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"csrf_token": csrf_token(request), "next": _safe_next(next), "error": None},
    )


def _login_answer(
    request: Request,
    next_url: str | None,
    error: str,
    status_code: int,
    retry_after: float | None = None,
) -> Response:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else None
    return TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"csrf_token": csrf_token(request), "next": _safe_next(next_url), "error": error},
        status_code=status_code,
        headers=headers,
    )


def _known_browsers(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings(request).secret_key, salt="known-browser")


def is_known_browser(request: Request, name: str) -> bool:
    """Whether this browser logged in as ``name`` within KNOWN_BROWSER_DAYS."""
    cookie = request.cookies.get(KNOWN_BROWSER_COOKIE)
    if not cookie or len(cookie) > 512:
        return False
    try:
        known = _known_browsers(request).loads(cookie, max_age=KNOWN_BROWSER_DAYS * 86400)
    except BadSignature:
        return False
    return bool(known == name)


@dataclass(frozen=True)
class Refusal:
    """Why a password was not checked or not right, and how to answer."""

    error: str
    status_code: int
    retry_after: float | None = None


async def checked_password(
    request: Request, users: UserStore, name: str, password: str
) -> Operator | Refusal:
    """The operator if the password is right; else a Refusal (throttled, busy or wrong).

    Every password check of the web app goes through here: the throttle first
    (and its wait, if the name is under attack), then the bounded argon2 pool,
    then the fixed delay on a wrong answer.
    """
    throttle: LoginThrottle = request.app.state.login_throttle
    pool: BoundedPool = request.app.state.password_pool
    source = request.client.host if request.client else "unknown"
    admission = throttle.begin(name, source, time.monotonic(), is_known_browser(request, name))
    if isinstance(admission, Locked):
        return Refusal(
            f"Too many failed logins. Try again in {math.ceil(admission.wait)} seconds.",
            status.HTTP_429_TOO_MANY_REQUESTS,
            admission.wait,
        )
    if admission.hold > 0:
        # Others are guessing this name: a short wait, then the check (not a refusal).
        await asyncio.sleep(admission.hold)
    try:
        operator = await pool.run(users.authenticate, name, password)
    except PoolBusy:
        return Refusal(
            "The server is busy. Try again in a moment.", status.HTTP_503_SERVICE_UNAVAILABLE, 1
        )
    if operator is None:
        # The same words and the same delay whether or not the name exists.
        await asyncio.sleep(settings(request).login_failure_delay)
        return Refusal("Wrong name or password.", status.HTTP_401_UNAUTHORIZED)
    throttle.succeeded(name, source)
    return operator


async def _start_session(request: Request, users: UserStore, operator: Operator) -> None:
    previous = request.session.get("sid")
    if isinstance(previous, str):
        await run_in_threadpool(users.end_session, previous)
    # A fresh session on login, so a token planted before it is worthless.
    request.session.clear()
    source = request.client.host if request.client else None
    request.session["sid"] = await run_in_threadpool(users.open_session, operator, source)
    csrf_token(request)


def _remember_browser(request: Request, answer: Response, operator: Operator) -> None:
    answer.set_cookie(
        KNOWN_BROWSER_COOKIE,
        _known_browsers(request).dumps(operator.name),
        max_age=KNOWN_BROWSER_DAYS * 86400,
        path="/login",
        secure=settings(request).secure_cookies,
        httponly=True,
        samesite="strict",
    )


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token_field: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next: Annotated[str, Form()] = "/console",
    users: UserStore = Depends(user_store),  # noqa: B008
) -> Response:
    if not csrf_valid(request, csrf_token_field):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form expired; reload the page")
    result = await checked_password(request, users, name, password)
    if isinstance(result, Refusal):
        return _login_answer(request, next, result.error, result.status_code, result.retry_after)
    await _start_session(request, users, result)
    answer = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    _remember_browser(request, answer, result)
    return answer


@router.post("/logout")
async def logout(
    request: Request,
    csrf_token_field: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    users: UserStore = Depends(user_store),  # noqa: B008
) -> Response:
    if not csrf_valid(request, csrf_token_field):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form expired; reload the page")
    secret = request.session.get("sid")
    if isinstance(secret, str):
        await run_in_threadpool(users.end_session, secret)
    request.session.clear()
    return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)


# The operator's own account page: sessions, tokens, password -------------------


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


async def _account_page(
    request: Request,
    users: UserStore,
    operator: Operator,
    error: str | None = None,
    status_code: int = status.HTTP_200_OK,
    retry_after: float | None = None,
) -> Response:
    credentials = await run_in_threadpool(users.credentials, operator.name)
    secret = request.session.get("sid")
    current = await run_in_threadpool(users.session_id, secret) if isinstance(secret, str) else None
    flash = request.session.pop("flash", None)
    if not (isinstance(flash, dict) and {"kind", "text"} <= flash.keys()):
        flash = None
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else None
    return TEMPLATES.TemplateResponse(
        request,
        "account.html",
        {
            "operator": operator,
            "credentials": credentials,
            "current": current,
            "when": _when,
            "csrf_token": csrf_token(request),
            "flash": flash,
            "error": error,
        },
        status_code=status_code,
        headers=headers,
    )


OperatorPage = Annotated[Operator, Depends(require_operator_page)]


@router.get("/console/account", response_class=HTMLResponse)
async def account(
    request: Request,
    operator: OperatorPage,
    users: UserStore = Depends(user_store),  # noqa: B008
) -> Response:
    """The operator's sessions and tokens, each with a Revoke button, and the password form."""
    return await _account_page(request, users, operator)


def _back_to_account(request: Request, kind: str, text: str) -> Response:
    request.session["flash"] = {"kind": kind, "text": text}
    return RedirectResponse("/console/account", status.HTTP_303_SEE_OTHER)


@router.post("/console/account/revoke")
async def revoke(
    request: Request,
    operator: OperatorPage,
    credential_id: Annotated[str, Form(alias="id", max_length=24)],
    csrf_token_field: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    users: UserStore = Depends(user_store),  # noqa: B008
) -> Response:
    """End one of the operator's own sessions or tokens; ending this browser's logs it out."""
    if not csrf_valid(request, csrf_token_field):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form expired; reload the page")
    secret = request.session.get("sid")
    current = await run_in_threadpool(users.session_id, secret) if isinstance(secret, str) else None
    try:
        await run_in_threadpool(users.revoke, operator.name, credential_id)
    except StoreError as error:
        return _back_to_account(request, "error", error.message)
    if credential_id == current:
        request.session.clear()
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    return _back_to_account(request, "ok", f"{credential_id} revoked.")


@router.post("/console/account/password", response_class=HTMLResponse)
async def change_password(
    request: Request,
    operator: OperatorPage,
    current: Annotated[str, Form(max_length=MAX_PASSWORD)],
    new: Annotated[str, Form(max_length=MAX_PASSWORD)],
    again: Annotated[str, Form(max_length=MAX_PASSWORD)],
    csrf_token_field: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    users: UserStore = Depends(user_store),  # noqa: B008
) -> Response:
    """A new password: every session and token ends, and this browser gets a fresh session."""
    if not csrf_valid(request, csrf_token_field):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form expired; reload the page")
    unprocessable = status.HTTP_422_UNPROCESSABLE_CONTENT
    if new != again:
        return await _account_page(
            request, users, operator, "The two new passwords differ.", unprocessable
        )
    if len(new) < MIN_PASSWORD:
        return await _account_page(
            request, users, operator, f"Use at least {MIN_PASSWORD} characters.", unprocessable
        )
    result = await checked_password(request, users, operator.name, current)
    if isinstance(result, Refusal):
        error = "The current password is wrong." if result.status_code == 401 else result.error
        return await _account_page(
            request, users, operator, error, result.status_code, result.retry_after
        )
    pool: BoundedPool = request.app.state.password_pool
    try:
        await pool.run(users.set_password, operator.name, new)
    except PoolBusy:
        return await _account_page(
            request,
            users,
            operator,
            "The server is busy. Try again in a moment.",
            status.HTTP_503_SERVICE_UNAVAILABLE,
            1,
        )
    await _start_session(request, users, operator)
    return _back_to_account(
        request, "ok", "Password changed. Every other session and every token has ended."
    )
