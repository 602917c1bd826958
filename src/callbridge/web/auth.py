"""Who may change what: operator sessions, bearer tokens and CSRF tokens.

The public reads events, announcements and webcast pages. Everything that
changes an event, and every moderator action, needs an operator: the console
by a signed session cookie, scripts by ``Authorization: Bearer``. A request
that rides on the cookie and changes state must also carry the session's
CSRF token (a form field, or the ``X-CSRF-Token`` header from the console's
scripts), so another site cannot make an operator's browser act.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from callbridge.store.users import Operator, UserStore
from callbridge.web.deps import TEMPLATES, settings, user_store

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

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
    operator_id = request.session.get("operator_id")
    if not isinstance(operator_id, int):
        return None
    operator = await run_in_threadpool(users.get, operator_id)
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
    operator = await run_in_threadpool(users.authenticate, name, password)
    if operator is None:
        # The same words and the same delay whether or not the name exists.
        await asyncio.sleep(settings(request).login_failure_delay)
        return TEMPLATES.TemplateResponse(
            request,
            "login.html",
            {
                "csrf_token": csrf_token(request),
                "next": _safe_next(next),
                "error": "Wrong name or password.",
            },
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    # A fresh session on login, so a token planted before it is worthless.
    request.session.clear()
    request.session["operator_id"] = operator.id
    csrf_token(request)
    return RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)


@router.post("/logout")
async def logout(
    request: Request, csrf_token_field: Annotated[str, Form(alias=CSRF_FIELD)] = ""
) -> Response:
    if not csrf_valid(request, csrf_token_field):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form expired; reload the page")
    request.session.clear()
    return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
