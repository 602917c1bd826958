"""Which origin serves a call's replay: the one whose recording holds the most of it.

With a hot standby each origin records the call on its own disk
(``store.coverage`` says why one may hold less). An origin asked for a
replay that another origin holds clearly more of (``MARGIN_S``) answers 503,
kept by nobody: the cache tier in front tries the next origin at once
(``edge.varnish.failover_vcl``). A standalone node or an edge is never asked.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import Request, status
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from callbridge.config import Settings
from callbridge.store.coverage import ReplayCoverage
from callbridge.store.db import Database
from callbridge.webcast import vod

# Two seconds: both origins' replays of one whole call differ by a moment
# (each started recording as its own conference started).
MARGIN_S = 2.0


def _seconds(hls: Path) -> float | None:
    try:
        return float(json.loads((hls / vod.MARKER).read_text())["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def elsewhere(
    request: Request, database: Database, event_id: int, hls: Path
) -> Response | None:
    """503 when another origin's replay of the event holds more than this one's; else None."""
    settings: Settings = request.app.state.settings
    if settings.role != "origin":
        return None
    seconds = _seconds(hls)
    if seconds is None:
        return None
    coverage = ReplayCoverage(database)
    better = await run_in_threadpool(
        coverage.better_elsewhere, event_id, settings.node_id, seconds, MARGIN_S
    )
    if better is None:
        return None
    node, held = better
    return PlainTextResponse(
        f"{node} holds {held:.0f} s of this call's replay, this origin {seconds:.0f} s",
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Cache-Control": "no-store", "Retry-After": "1"},
    )
