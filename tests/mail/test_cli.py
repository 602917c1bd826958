"""``serve --smtp`` checked before anything starts; ``event mail`` sets what an event sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callbridge.cli import main as cli
from callbridge.config import Settings
from callbridge.store.db import Database
from callbridge.store.outbox import MailSettings, Outbox
from tests.mail.conftest import make_event


def test_serve_smtp_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[Settings] = []

    def serve(settings: Settings, **_: Any) -> None:
        served.append(settings)

    monkeypatch.setattr("callbridge.server.serve", serve)
    db = f"sqlite:///{tmp_path / 'cb.sqlite3'}"
    base = ["--db", db, "serve", "--data-dir", str(tmp_path / "var")]
    base += ["--public-url", "https://ir.example"]
    good = ["--smtp", "smtps://u:p@relay.example", "--smtp-from", "IR <ir@x.example>"]
    assert (
        cli.main([*base, *good, "--smtp-ca", "/etc/ca.pem", "--alert-email", "noc@x.example"]) == 0
    )
    (settings,) = served
    assert settings.alert_email == "noc@x.example"
    assert settings.smtp_url == "smtps://u:p@relay.example"
    assert settings.smtp_from == "IR <ir@x.example>"
    assert settings.smtp_ca_file == Path("/etc/ca.pem")
    capsys.readouterr()
    for options, says in (
        (["--smtp", "http://relay.example", "--smtp-from", "ir@x.example"], "smtp://host"),
        (["--smtp", "smtp://relay.example"], "--smtp-from"),
        (["--smtp", "smtp://relay.example", "--smtp-from", "IR team"], "--smtp-from: "),
        (["--smtp-from", "ir@x.example"], "go with --smtp"),
        (["--alert-email", "noc@x.example"], "go with --smtp"),
        ([*good, "--alert-email", "the noc"], "--alert-email: "),
    ):
        assert cli.main([*base, *options]) == cli.EXIT_INPUT
        err = capsys.readouterr().err
        assert says in err and len(err.splitlines()) == 1, err
    no_url = [a for a in base if a not in ("--public-url", "https://ir.example")]
    assert cli.main([*no_url, *good]) == cli.EXIT_INPUT
    assert "--public-url" in capsys.readouterr().err
    assert len(served) == 1


def test_event_mail(
    tmp_path: Path, sqlite_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    event = make_event(sqlite_database, datetime(2030, 1, 1, 15, tzinfo=UTC) + timedelta(days=1))
    db = ["--db", sqlite_database.url]
    assert cli.main([*db, "event", "mail", str(event.id)]) == 0
    assert capsys.readouterr().out == "confirmation on; reminders 24h, 15m; replay notice on\n"
    assert (
        cli.main([*db, "event", "mail", str(event.id), "--reminders", "2d,30m", "--no-replay"]) == 0
    )
    assert capsys.readouterr().out == "confirmation on; reminders 48h, 30m; replay notice off\n"
    assert Outbox(sqlite_database).settings(event.id) == MailSettings(True, "2880,30", False)
    assert cli.main([*db, "event", "mail", str(event.id), "--reminders", "", "--replay"]) == 0
    assert capsys.readouterr().out == "confirmation on; reminders off; replay notice on\n"
    assert cli.main([*db, "event", "mail", str(event.id), "--reminders", "tomorrow"]) == 2
    assert "--reminders" in capsys.readouterr().err
    assert cli.main([*db, "event", "mail", "999"]) == cli.EXIT_INPUT
