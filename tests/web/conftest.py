"""Fixtures for the web app: an in-process client, a live server, real Chromium."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.config import Settings
from callbridge.store.db import Database
from callbridge.store.users import UserStore
from callbridge.web.app import create_app
from tests.support.chromium import launch
from tests.support.ports import free_port

OPERATOR = "dana"
PASSWORD = "correct horse battery"


def make_settings(tmp_path: Path, db: Database, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_url": db.url,
        "data_dir": tmp_path / "var",
        "secret_key": "test-secret-key-" + "x" * 32,
        "login_failure_delay": 0.3,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def app(tmp_path: Path, sqlite_database: Database) -> FastAPI:
    UserStore(sqlite_database).add(OPERATOR, PASSWORD)
    return create_app(make_settings(tmp_path, sqlite_database), sqlite_database)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def token(app: FastAPI) -> str:
    users: UserStore = app.state.users
    return users.issue_token(OPERATOR)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LiveServer:
    url: str
    app: FastAPI


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    """The app served by uvicorn on a free loopback port, in a thread."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch() as browser:
        yield browser


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()
