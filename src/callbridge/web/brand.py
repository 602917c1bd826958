"""The company's logo and the event's brand stylesheet, served by us under our own policy.

The pages' policy allows styles from this origin only (``style-src 'self'``),
so the accent cannot come in a ``style`` attribute: each event has a tiny
stylesheet, ``/events/{id}/brand.css``, that sets it as custom properties.
The logo is served with its checked type, ``nosniff``, and, for an SVG, a
policy of its own that lets nothing in it load or run should someone open
it directly (shown through ``<img>``, a browser runs nothing in it anyway).
Both are public, like the webcast page that shows them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from starlette.concurrency import run_in_threadpool

from callbridge.brand.colour import stylesheet
from callbridge.brand.logo import MAX_BYTES, SVG, LogoRefused, check_logo
from callbridge.events.schema import LogoInfo
from callbridge.store.brand import BrandStore
from callbridge.store.events import EventStore, StoreError
from callbridge.store.users import Operator
from callbridge.web.auth import require_operator
from callbridge.web.deps import event_store

router = APIRouter(include_in_schema=False)

SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
# An address with the digest (?v=) changes when the logo does: the old one may be kept.
KEEP_VERSIONED = "public, max-age=86400"
KEEP_PLAIN = "public, max-age=60"


def brand_store(request: Request) -> BrandStore:
    value: BrandStore | None = getattr(request.app.state, "brand", None)
    if value is None:
        value = BrandStore(request.app.state.database)
        request.app.state.brand = value
    return value


Brands = Annotated[BrandStore, Depends(brand_store)]
Store = Annotated[EventStore, Depends(event_store)]
OperatorDep = Annotated[Operator, Depends(require_operator)]


class LogoTooLarge(StoreError):
    status = 413


@router.put("/api/events/{event_id}/logo", include_in_schema=True, tags=["events"])
async def put_logo(event_id: int, request: Request, brands: Brands, _: OperatorDep) -> LogoInfo:
    """Give the event's company a logo: the request's body is the PNG or SVG file itself.

    Checked as the editor checks it (``brand.logo``): a refusal is 422 naming
    ``logo`` and why, a body over the limit 413, read no further.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise LogoTooLarge(f"a logo is at most {MAX_BYTES // 1024} KB", field="logo")
    try:
        logo = await run_in_threadpool(check_logo, bytes(body))
    except LogoRefused as exc:
        raise StoreError(f"the logo {exc}", field="logo") from None
    await run_in_threadpool(brands.set_logo, event_id, logo)
    return LogoInfo(
        media_type=logo.media_type, digest=logo.digest, width=logo.width, height=logo.height
    )


@router.delete(
    "/api/events/{event_id}/logo",
    include_in_schema=True,
    tags=["events"],
    status_code=status.HTTP_204_NO_CONTENT,
)
async def delete_logo(event_id: int, brands: Brands, _: OperatorDep) -> Response:
    """Take the event's company's logo away (its pages show its ticker and name again)."""
    await run_in_threadpool(brands.set_logo, event_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/events/{event_id}/logo")
async def logo(event_id: int, brands: Brands, v: str | None = None) -> Response:
    """The event's company's logo (PNG or sanitised SVG); 404 when it has none."""
    found = await run_in_threadpool(brands.logo, event_id)
    if found is None:
        return Response("This company has no logo.\n", 404, media_type="text/plain")
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": KEEP_VERSIONED if v == found.digest else KEEP_PLAIN,
        "ETag": f'"{found.digest}"',
        "Content-Disposition": f'inline; filename="logo.{found.extension}"',
    }
    if found.media_type == SVG:
        headers["Content-Security-Policy"] = SVG_POLICY
    return Response(found.data, media_type=found.media_type, headers=headers)


@router.get("/events/{event_id}/brand.css")
async def brand_css(event_id: int, store: Store) -> Response:
    """The accent of the event's company (or the default) as CSS custom properties."""
    record = await run_in_threadpool(store.get, event_id)
    return Response(
        stylesheet(record.company.accent),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": KEEP_PLAIN, "X-Content-Type-Options": "nosniff"},
    )
