"""The engagement report for the IR team: a console page with a chart, a CSV and a PDF.

Both are built from ``store.report.Engagement``. The chart is an inline SVG
drawn by the template from bars measured here (no script, no chart
library), with the same figures in a table beside it for screen readers and
for copying. The CSV is quoted by the ``csv`` module and every cell passes
``spreadsheet_safe``, so an event titled ``=HYPERLINK(...)`` stays text.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from callbridge.events.schema import EventRecord
from callbridge.store.events import EventNotFound, EventStore
from callbridge.store.report import Engagement, EngagementReport, Heard
from callbridge.store.users import Operator
from callbridge.web.auth import require_operator, require_operator_page
from callbridge.web.brand import Brands
from callbridge.web.calls import spreadsheet_safe
from callbridge.web.deps import TEMPLATES, event_store
from callbridge.web.downloads import downloads_for
from callbridge.web.pages import Now, _not_found, view_of
from callbridge.web.report_figures import cell, figure_rows, tiles

router = APIRouter(include_in_schema=True, tags=["calls"])

Store = Annotated[EventStore, Depends(event_store)]

# The chart's geometry (SVG user units): a label column, then the bars.
CHART_WIDTH = 640
LABEL_WIDTH = 150
BAR_SPACE = 400
BAR_HEIGHT = 22
BAR_GAP = 10
WRITTEN_NOT_COLLECTED = "written questions are those typed on the webcast page"


def reports(request: Request) -> EngagementReport:
    value: EngagementReport | None = getattr(request.app.state, "engagement", None)
    if value is None:
        value = EngagementReport(
            request.app.state.database, request.app.state.call_log, request.app.state.audience
        )
        request.app.state.engagement = value
    return value


Reports = Annotated[EngagementReport, Depends(reports)]


@dataclass(frozen=True)
class Bar:
    label: str
    text: str
    y: int
    width: int


@dataclass(frozen=True)
class Chart:
    """One horizontal bar chart, measured for the template."""

    id: str
    title: str
    bars: tuple[Bar, ...]

    @property
    def height(self) -> int:
        return len(self.bars) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP


def chart(chart_id: str, title: str, values: list[tuple[str, float, str]]) -> Chart:
    """Bars for ``(label, value, text)``, the longest ``BAR_SPACE`` wide; a zero gets none."""
    top = max((value for _, value, _ in values), default=0) or 1
    return Chart(
        chart_id,
        title,
        tuple(
            Bar(
                label=label,
                text=text,
                y=BAR_GAP + i * (BAR_HEIGHT + BAR_GAP),
                width=round(BAR_SPACE * value / top),
            )
            for i, (label, value, text) in enumerate(values)
        ),
    )


def _minutes(heard: Heard) -> str:
    return f"{heard.minutes:.1f}"


GROUPS = (
    ("Live, by phone", "live_phone"),
    ("Live, on the web", "live_web"),
    ("Replay, by phone", "replay_phone"),
    ("Replay, on the web", "replay_web"),
)


def charts(figures: Engagement) -> tuple[Chart, Chart]:
    """Listeners and minutes heard, by channel, live and on the replay."""
    groups = [(label, getattr(figures, name)) for label, name in GROUPS]
    return (
        chart(
            "chart-listeners",
            "Listeners",
            [(label, h.listeners, str(h.listeners)) for label, h in groups],
        ),
        chart(
            "chart-minutes",
            "Minutes heard",
            [(label, h.minutes, _minutes(h)) for label, h in groups],
        ),
    )


def csv_rows(record: EventRecord, figures: Engagement) -> list[list[str]]:
    """The report as CSV rows (header first): one row per figure, phone, web and total."""
    by_channel = [
        [row.label.lower()]
        + [
            cell(v, minutes=row.minutes, grouped=False, missing="")
            for v in (row.phone, row.web, row.total)
        ]
        for row in figure_rows(figures)
    ]
    head = [str(record.id), record.company.ticker, record.title, record.starts_at.isoformat()]
    rows = [["event_id", "ticker", "title", "starts_at", "figure", "phone", "web", "total"]]
    rows += [[spreadsheet_safe(text) for text in [*head, *row]] for row in by_channel]
    return rows


@router.get("/api/events/{event_id}/report.csv", response_class=Response)
async def report_csv(
    event_id: int, store: Store, report: Reports, _: Annotated[Operator, Depends(require_operator)]
) -> Response:
    """Registrations, listeners and minutes by channel (live, replay), questions asked."""
    record = await run_in_threadpool(store.get, event_id)
    figures = await run_in_threadpool(report.of, event_id)
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(record, figures))
    filename = f"{record.company.ticker.lower()}-event-{event_id}-engagement.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/api/events/{event_id}/report.pdf", response_class=Response)
async def report_pdf(
    event_id: int,
    store: Store,
    report: Reports,
    brands: Brands,
    _: Annotated[Operator, Depends(require_operator)],
) -> Response:
    """The report as a one-page PDF with the company's logo (a PNG one; an SVG is left out)."""
    # reportlab is loaded on the first PDF asked for, not with every web process.
    from callbridge.web.report_pdf import render_pdf

    record = await run_in_threadpool(store.get, event_id)
    figures = await run_in_threadpool(report.of, event_id)
    logo = await run_in_threadpool(brands.logo, event_id)
    now = datetime.now(UTC)
    body = await run_in_threadpool(
        render_pdf, record, figures, view_of(record, now).when, now, logo
    )
    filename = f"{record.company.ticker.lower()}-event-{event_id}-engagement.pdf"
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/console/events/{event_id}/report", response_class=HTMLResponse, include_in_schema=False
)
async def report_page(
    request: Request,
    event_id: int,
    store: Store,
    report: Reports,
    operator: Annotated[Operator, Depends(require_operator_page)],
    now: Now,
) -> Response:
    """The engagement report with its chart, for the IR team the morning after."""
    try:
        record = await run_in_threadpool(store.get, event_id)
    except EventNotFound:
        return _not_found(request, event_id)
    figures = await run_in_threadpool(report.of, event_id)
    return TEMPLATES.TemplateResponse(
        request,
        "report.html",
        {
            "operator": operator,
            "event": view_of(record, now),
            "figures": figures,
            "charts": charts(figures),
            "label_width": LABEL_WIDTH,
            "chart_width": CHART_WIDTH,
            "bar_height": BAR_HEIGHT,
            "written_note": WRITTEN_NOT_COLLECTED,
            "csv_href": f"/api/events/{event_id}/report.csv",
            "pdf_href": f"/api/events/{event_id}/report.pdf",
            "tiles": tiles(figures),
            "downloads": await downloads_for(request, event_id, report_page=False),
        },
    )
