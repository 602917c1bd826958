"""Server-rendered pages: the public investor events page and the operator console."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import RedirectResponse

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/events", status.HTTP_307_TEMPORARY_REDIRECT)
