"""The active origin's lease on its row of the store: take or renew it, in one statement.

Why a row with an expiry and an epoch (and not an advisory lock) is said in
``cascade.lease``, which decides what to do with what ``claim`` returns.

``claim`` is one conditional ``UPDATE``: the lease becomes (or stays) the
caller's if the caller holds it already or, when ``take`` allows, if it has
expired; taking it from anyone else raises the epoch by one. The expiry is
counted on the store's own clock, so the origins' clocks never meet. The
store serialises the statement (PostgreSQL takes the row's lock and checks
the condition again on the row as the lock leaves it; SQLite writes one at a
time), so two origins can never both win an unexpired lease.

Tries go on an engine of their own, with short timeouts on PostgreSQL: a
renewal must not wait behind the call log's writes, nor hang on a dead
connection longer than the lease's term.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from callbridge.store.db import normalise_url

NAME = "origin"
# The store's clock in POSIX seconds, as each backend says it.
_NOW = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
# Milliseconds a try may take on PostgreSQL before it counts as the store not reached.
TIMEOUT_MS = 1000


@dataclass(frozen=True)
class LeaseRow:
    holder: str
    epoch: int
    mine: bool
    expires_in: float  # seconds left on the store's clock (negative: expired)


class LeaseStore:
    """The lease's row; one instance per origin process (it owns an engine)."""

    def __init__(self, url: str) -> None:
        url = normalise_url(url)
        backend = make_url(url).get_backend_name()
        if backend not in _NOW:
            raise ValueError(f"no lease on a {backend} store")
        self._now = _NOW[backend]
        self.engine: Engine
        if backend == "postgresql":
            self.engine = create_engine(
                url,
                pool_size=2,
                max_overflow=4,
                pool_pre_ping=False,
                connect_args={
                    "connect_timeout": 2,
                    "options": f"-c statement_timeout={TIMEOUT_MS} -c lock_timeout={TIMEOUT_MS}",
                    "keepalives": 1,
                    "keepalives_idle": 1,
                    "keepalives_interval": 1,
                    "keepalives_count": 2,
                },
            )
        else:
            self.engine = create_engine(url, connect_args={"timeout": TIMEOUT_MS / 1000})

    def claim(self, me: str, term: float, take: bool, name: str = NAME) -> LeaseRow:
        """Renew the lease if ``me`` holds it, else take it if it expired and ``take``.

        Returns the row as it stands after: who holds it, its epoch. Raises the
        driver's error if the store cannot be reached (the caller counts that
        as no answer).
        """
        now = self._now
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE origin_lease SET"
                    " epoch = CASE WHEN holder = :me THEN epoch ELSE epoch + 1 END,"
                    f" holder = :me, expires = {now} + :term"
                    " WHERE name = :name"
                    f" AND (holder = :me OR (:take AND expires < {now}))"
                ),
                {"me": me, "term": term, "take": take, "name": name},
            )
            row = connection.execute(
                text(f"SELECT holder, epoch, expires - {now} FROM origin_lease WHERE name = :name"),
                {"name": name},
            ).one_or_none()
            if row is None:
                # The row is made by the migration; one deleted by hand is made again, free.
                connection.execute(
                    text(
                        "INSERT INTO origin_lease (name, holder, epoch, expires)"
                        " VALUES (:name, '', 0, 0)"
                    ),
                    {"name": name},
                )
                return LeaseRow("", 0, False, -1.0)
        holder, epoch, left = str(row[0]), int(row[1]), float(row[2])
        return LeaseRow(holder, epoch, holder == me, left)

    def release(self, me: str, name: str = NAME) -> None:
        """Let the lease go at once (a clean stop): the standby need not wait out its term."""
        with self.engine.begin() as connection:
            connection.execute(
                text(f"UPDATE origin_lease SET expires = {self._now} - 1"
                     " WHERE name = :name AND holder = :me"),
                {"me": me, "name": name},
            )  # fmt: skip

    def dispose(self) -> None:
        self.engine.dispose()
