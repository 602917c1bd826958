"""Opening the database and bringing its schema up to date.

SQLite (a file) is the embedded default; PostgreSQL is named with
``--db postgresql://…``. Every start runs the Alembic migrations, so an
upgraded callbridge never meets an old schema. A schema already at the head
is left alone without starting Alembic, so nothing is logged; a real
migration is logged as one line (Alembic's own lines at debug level only).

A SQLite file is created ``0600`` in a folder created ``0700``
(``store.files``); SQLite gives its ``-wal`` and ``-shm`` files the mode of
the database file, so they are private too.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from callbridge.store.files import create_private_file, private_dir

DEFAULT_SQLITE_PATH = Path("var") / "callbridge.sqlite3"
ENV_VAR = "CALLBRIDGE_DB"
MIGRATIONS = "callbridge.store:migrations"
VERSION_TABLE = "alembic_version"  # where Alembic keeps the schema's revision
VERSIONS = Path(__file__).parent / "migrations" / "versions"
# Revisions are numbered in their file names (0008_slide_change.py has revision
# "0008"), one after another; tests check this agrees with Alembic's own view.
_REVISION_FILE = re.compile(r"(\d{4})_\w+\.py")
# The largest id either database stores (SQLite INTEGER, PostgreSQL BIGINT): a
# larger one in a URL can name nothing, and asking the driver for it overflows.
MAX_ID = 2**63 - 1
# Seconds a new connection to PostgreSQL may take before it counts as unreachable.
CONNECT_TIMEOUT = 5


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchemaUpgrade:
    """What ``Database.upgrade`` changed: the revisions before (none: a new database) and after."""

    before: tuple[str, ...]
    after: tuple[str, ...]

    def __str__(self) -> str:
        after = ", ".join(self.after)
        if not self.before:
            return f"database created (schema {after})"
        return f"database schema upgraded from {', '.join(self.before)} to {after}"


def _revisions(connection: Connection) -> tuple[str, ...]:
    # Read straight from Alembic's table: starting Alembic only to ask logs
    # lines of its own.
    if not inspect(connection).has_table(VERSION_TABLE):
        return ()
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return tuple(sorted(str(row[0]) for row in rows))


def schema_head() -> tuple[str, ...]:
    """The newest revision, read from the migration files' names.

    Alembic (half a second to import) is loaded only when a migration runs:
    every CLI command and each of serve's processes opens the database.
    """
    numbers = [m.group(1) for p in VERSIONS.iterdir() if (m := _REVISION_FILE.fullmatch(p.name))]
    return (max(numbers),)


def valid_id(value: int) -> bool:
    """Whether ``value`` can be a row id; check ids from URLs and commands before a query."""
    return 0 < value <= MAX_ID


def default_url() -> str:
    """The database URL from ``CALLBRIDGE_DB``, else a SQLite file under ./var."""
    return os.environ.get(ENV_VAR) or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def normalise_url(url: str) -> str:
    """Map the URL people write to the driver we ship (psycopg 3 for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _enable_sqlite_foreign_keys(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        # Foreign keys are off by default in SQLite; WAL lets readers (the web
        # pages) go on while the bridge writes.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


class Database:
    """One engine and its session factory; hand it to services, not the URL."""

    def __init__(self, url: str | None = None) -> None:
        self.url = normalise_url(url or default_url())
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            # The folder may be the operator's (it is not tightened); the file is ours.
            private_dir(path.parent, tighten=False)
            create_private_file(path)
        # A database cut off by the network answers no connect at all: without a
        # limit the driver waits for the kernel's (minutes), and the media plane's
        # one database thread with it (``bridge.outage``).
        connect_args = {} if self.is_sqlite else {"connect_timeout": CONNECT_TIMEOUT}
        self.engine = create_engine(
            self.url, pool_pre_ping=not self.is_sqlite, connect_args=connect_args
        )
        if self.is_sqlite:
            _enable_sqlite_foreign_keys(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def ping(self) -> None:
        """Ask the database for nothing: raises when it cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def upgrade(self) -> SchemaUpgrade | None:
        """Apply every pending migration (idempotent); call before using the database.

        Returns what changed, or None when the schema was already at the head.
        """
        with self.engine.begin() as connection:
            before = _revisions(connection)
            if before == schema_head():
                return None
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", MIGRATIONS)
            config.attributes["connection"] = connection
            alembic_log = logging.getLogger("alembic")
            quiet = not alembic_log.isEnabledFor(logging.DEBUG)
            saved = alembic_log.level
            if quiet:
                # One line below says what happened; Alembic's step by step is for -v.
                alembic_log.setLevel(logging.WARNING)
            try:
                command.upgrade(config, "head")
            finally:
                alembic_log.setLevel(saved)
            done = SchemaUpgrade(before, _revisions(connection))
        log.info("%s", done)
        return done

    def dispose(self) -> None:
        self.engine.dispose()
