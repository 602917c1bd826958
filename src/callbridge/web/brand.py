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

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from callbridge.brand.colour import stylesheet
from callbridge.brand.logo import SVG
from callbridge.store.brand import BrandStore
from callbridge.store.events import EventStore
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
