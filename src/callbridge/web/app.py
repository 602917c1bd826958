"""The web application factory: API, investor pages, operator console."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from callbridge.bridge.control import BridgeUnavailable
from callbridge.config import Settings
from callbridge.events.errors import normalise_errors
from callbridge.mail.alert_feed import AlertFeed
from callbridge.mail.compose import Letterhead, Sender
from callbridge.mail.planner import MailDesk, Planner
from callbridge.mail.smtp import SmtpConfig, SmtpSender
from callbridge.mail.worker import CONNECTIONS, MailWorker
from callbridge.store.aftercall import AfterCall
from callbridge.store.audience import Audience, BeaconFlusher
from callbridge.store.calllog import CallLog
from callbridge.store.db import Database
from callbridge.store.events import EventStore, StoreError
from callbridge.store.nodes import NodeStore
from callbridge.store.outbox import Outbox
from callbridge.store.pins import PinBook, pin_key
from callbridge.store.transcripts import TranscriptEdits
from callbridge.store.users import SESSION_LIFETIME, UserStore
from callbridge.web import (
    aftercall,
    api,
    auth,
    brand,
    callme,
    calls,
    editor,
    exports,
    key_figures_files,
    mail,
    media,
    metrics,
    nodes,
    pages,
    questions,
    registrants,
    report,
    slides,
    transcript_editor,
    webcast,
)
from callbridge.web.auth import LoginRequired, login_redirect
from callbridge.web.folder_watch import FolderWatches
from callbridge.web.limits import WebLimits
from callbridge.web.security import SecurityHeaders
from callbridge.web.throttle import LoginThrottle
from callbridge.web.tier import TierPeer
from callbridge.web.workpool import BoundedPool

STATIC = Path(__file__).parent / "static"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app serves: the webcast's beacons are written in batches, the last on stop;
    with ``--smtp``, the outbox is sent from this event loop (``mail.worker``)."""
    flusher = BeaconFlusher(app.state.audience).start()
    sender = mail_sender(app)
    task = asyncio.create_task(sender.run(), name="mail-sender") if sender is not None else None
    feed = app.state.alert_feed = alert_feed(app, sender)
    watching = asyncio.create_task(feed.run(), name="alerts") if feed is not None else None
    try:
        yield
    finally:
        if feed is not None and watching is not None:
            feed.stop()
            await watching
        if sender is not None and task is not None:
            sender.stop()
            await task
        await run_in_threadpool(flusher.stop)


def alert_feed(app: FastAPI, sender: MailWorker | None) -> AlertFeed | None:
    """The operator's alerts by email (``--alert-email``), sent by this app's sender."""
    settings: Settings = app.state.settings
    desk: MailDesk = app.state.mail
    if sender is None or settings.alert_email is None or desk.letterhead is None:
        return None
    database: Database = app.state.database
    return AlertFeed(
        app.state.call_log,
        NodeStore(database),
        desk.outbox,
        desk.letterhead,
        settings.alert_email,
        on_enqueued=sender.wake,
    )


def _letterhead(settings: Settings) -> Letterhead | None:
    if settings.smtp_url is None:
        return None
    if settings.smtp_from is None:
        raise ValueError("--smtp needs --smtp-from, the address mail comes from")
    return Letterhead(Sender.parse(settings.smtp_from), settings.public_url, settings.secret_key)


def mail_sender(app: FastAPI) -> MailWorker | None:
    """The outbox's sender for this app (None without ``--smtp``); its desk wakes it."""
    settings: Settings = app.state.settings
    desk: MailDesk = app.state.mail
    if settings.smtp_url is None or desk.letterhead is None:
        return None
    media_files: media.WebcastMedia = app.state.webcast_media
    planner = Planner(
        desk.outbox,
        app.state.events,
        desk.letterhead,
        lambda event_id: media_files.replay(event_id) is not None,
    )
    config = SmtpConfig.parse(settings.smtp_url, settings.smtp_ca_file)
    connections = [SmtpSender(config) for _ in range(CONNECTIONS)]
    worker = MailWorker(desk.outbox, connections, planner)
    desk.on_enqueued = worker.wake
    return worker


def create_app(settings: Settings, database: Database | None = None) -> FastAPI:
    """Build the app around one database; the schema is upgraded here, on start."""
    db = database or Database(settings.db_url)
    db.upgrade()
    app = FastAPI(
        title="callbridge",
        summary="Earnings calls: announcement, dial-in, webcast and replay",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = db
    app.state.events = EventStore(db)
    app.state.after_call = AfterCall(db, app.state.events)
    app.state.users = UserStore(db)
    app.state.call_log = CallLog(db)
    app.state.transcript_edits = TranscriptEdits(db)
    app.state.audience = Audience(db)
    app.state.pins = PinBook(db, pin_key(settings.secret_key))
    app.state.webcast_media = media.WebcastMedia(settings.data_dir)
    app.state.folder_watches = FolderWatches()
    app.state.login_throttle = LoginThrottle()
    app.state.limits = WebLimits()
    app.state.password_pool = BoundedPool(settings.password_checks, settings.password_check_queue)
    app.state.mail = MailDesk(Outbox(db), _letterhead(settings))

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="callbridge_session",
        same_site="lax",
        https_only=settings.secure_cookies,
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    # Beacons (thousands a minute) skip the session and the router.
    app.add_middleware(webcast.BeaconRoute)
    # Added last, so it wraps everything, errors included.
    app.add_middleware(SecurityHeaders, secure=settings.secure_cookies)
    # Outside even that: which requests the cache tier sent (its own cache by
    # the socket it came in on, other nodes by address), before X-Forwarded-For
    # (believed only from the tier) replaces the client for every part of the app.
    app.add_middleware(TierPeer, nodes=settings.trusted_proxies, cache_socket=settings.cache_socket)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> Response:
        status_code = exc.status
        if exc.field is not None and status_code == 400:
            status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
        loc = ["body", *exc.field.split(".")] if exc.field else []
        return JSONResponse(
            {"detail": [{"loc": loc, "msg": exc.message, "type": type(exc).__name__}]},
            status_code=status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse(
            {"detail": jsonable_encoder(normalise_errors(exc.errors()))},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(BridgeUnavailable)
    async def _bridge_unavailable(request: Request, exc: BridgeUnavailable) -> Response:
        return JSONResponse(
            {"detail": str(exc)},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        return login_redirect(exc.next_url)

    app.include_router(api.router)
    app.include_router(calls.router)
    app.include_router(calls.stats_router)
    app.include_router(exports.router)
    app.include_router(nodes.router)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(editor.router)
    app.include_router(aftercall.router)
    app.include_router(report.router)
    app.include_router(questions.router)
    app.include_router(callme.router)
    app.include_router(registrants.router)
    app.include_router(slides.router)
    app.include_router(webcast.router)
    app.include_router(mail.router)
    app.include_router(brand.router)
    app.include_router(media.router)
    app.include_router(transcript_editor.router)
    app.include_router(transcript_editor.api)
    app.include_router(key_figures_files.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
