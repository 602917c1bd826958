"""Fixtures for the mail tests: a real SMTP server, an event to write about, a letterhead."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import EventFile, EventRecord
from callbridge.mail.compose import Letterhead, Sender
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer, make_certificate

EXAMPLE = Path(__file__).parents[2] / "examples" / "northwind-q3.toml"
PUBLIC_URL = "https://ir.northwind.example"
SECRET = "mail-test-secret-" + "x" * 32


def event_data(starts_at: datetime) -> dict[str, Any]:
    with EXAMPLE.open("rb") as handle:
        data = tomllib.load(handle)
    data["event"]["starts_at"] = starts_at.astimezone(UTC).replace(microsecond=0)
    data["event"]["announced_on"] = (starts_at - timedelta(days=7)).date()
    data["event"]["replay_until"] = (starts_at + timedelta(days=7)).date()
    return data


def make_event(database: Database, starts_at: datetime) -> EventRecord:
    return EventStore(database).create(EventFile.model_validate(event_data(starts_at)))


@pytest.fixture
def event(sqlite_database: Database) -> EventRecord:
    """The Northwind call, two days from now (by the real clock)."""
    return make_event(sqlite_database, datetime.now(UTC) + timedelta(days=2))


@pytest.fixture
def letterhead() -> Letterhead:
    return Letterhead(Sender.parse("Northwind IR <ir@northwind.example>"), PUBLIC_URL, SECRET)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_server(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), *certificate).start()
    try:
        yield server
    finally:
        server.stop()
