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
attempt first passes the ``LoginThrottle`` (429 with ``Retry-After`` when a
name or an address has failed too often) and then the bounded argon2 pool
(503 at once when it is full), so a login flood costs neither memory nor
the event loop. A browser that logged in before carries a signed cookie
(``KNOWN_BROWSER_COOKIE``, the operator's name) that spares it the account's
lock: a stranger spraying an operator's name slows only strangers.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets
import time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from callbridge.store.users import Operator, UserStore
from callbridge.web.deps import TEMPLATES, settings, user_store
from callbridge.web.throttle import LoginThrottle
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
    throttle: LoginThrottle = request.app.state.login_throttle
    pool: BoundedPool = request.app.state.password_pool
    source = request.client.host if request.client else "unknown"
    wait = throttle.begin(name, source, time.monotonic(), is_known_browser(request, name))
    if wait is not None:
        return _login_answer(
            request,
            next,
            f"Too many failed logins. Try again in {math.ceil(wait)} seconds.",
            status.HTTP_429_TOO_MANY_REQUESTS,
            retry_after=wait,
        )
    try:
        operator = await pool.run(users.authenticate, name, password)
    except PoolBusy:
        return _login_answer(
            request,
            next,
            "The server is busy. Try again in a moment.",
            status.HTTP_503_SERVICE_UNAVAILABLE,
            retry_after=1,
        )
    if operator is None:
        # The same words and the same delay whether or not the name exists.
        await asyncio.sleep(settings(request).login_failure_delay)
        return _login_answer(request, next, "Wrong name or password.", status.HTTP_401_UNAUTHORIZED)
    throttle.succeeded(name, source)
    previous = request.session.get("sid")
    if isinstance(previous, str):
        await run_in_threadpool(users.end_session, previous)
    # A fresh session on login, so a token planted before it is worthless.
    request.session.clear()
    request.session["sid"] = await run_in_threadpool(users.open_session, operator, source)
    csrf_token(request)
    answer = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    answer.set_cookie(
        KNOWN_BROWSER_COOKIE,
        _known_browsers(request).dumps(operator.name),
        max_age=KNOWN_BROWSER_DAYS * 86400,
        path="/login",
        secure=settings(request).secure_cookies,
        httponly=True,
        samesite="strict",
    )
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
