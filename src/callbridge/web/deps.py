"""Services the routes use, handed over by the app factory through ``app.state``."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from callbridge.config import Settings
from callbridge.store.aftercall import AfterCall
from callbridge.store.events import EventStore
from callbridge.store.users import UserStore

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def event_store(request: Request) -> EventStore:
    value: EventStore = request.app.state.events
    return value


def user_store(request: Request) -> UserStore:
    value: UserStore = request.app.state.users
    return value


def after_call(request: Request) -> AfterCall:
    value: AfterCall = request.app.state.after_call
    return value
