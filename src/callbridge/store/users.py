"""Operator accounts, their browser sessions and their API tokens.

Passwords are hashed with argon2id at OWASP's baseline (19 MiB, two passes,
one lane): enough to make a stolen table slow to crack, small enough that
the web app's bounded pool of checks stays within a few dozen megabytes. A
hash made with other parameters is re-made at the next successful login. A
login for a name that does not exist still verifies against a dummy hash,
so the answer takes as long and reads the same whether the name exists.

Sessions and tokens are credentials the operator can list and revoke. Each
is a random secret of which only the SHA-256 is stored; a session lives
``SESSION_LIFETIME`` from login, a token until its optional expiry. Setting
a password ends every session and token the operator had.

Methods that depend on the time take ``now`` (an aware datetime), so tests
can move the clock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from callbridge.store.db import Database
from callbridge.store.events import Conflict, StoreError
from callbridge.store.models import ApiTokenRow, SessionRow, UserRow, utcnow

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
SESSION_LIFETIME = timedelta(hours=12)
# Past this many live sessions an operator's oldest is ended: the table stays bounded.
MAX_SESSIONS = 50
# last_used_at is written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=1)
TOKEN_PREFIX = "cb_"

# OWASP's argon2id baseline: m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


class NotFound(StoreError):
    """No such operator, or no such session or token of theirs."""

    status = 404


@dataclass(frozen=True)
class Operator:
    id: int
    name: str


@dataclass(frozen=True)
class Credential:
    """A session or a token as ``callbridge user tokens`` lists it.

    ``id`` is ``s<n>`` for a session and ``t<n>`` for a token: what ``revoke`` takes.
    """

    id: str
    kind: str  # "session" or "token"
    label: str  # a token's label, a session's source address
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _operator_row(session: Session, name: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFound(f"there is no operator {name!r}", field="name")
    return row


def _end_everything(session: Session, user_id: int) -> None:
    session.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
    session.execute(delete(ApiTokenRow).where(ApiTokenRow.user_id == user_id))


class UserStore:
    """Add operators, check their passwords, open and check sessions and tokens."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, name: str, password: str) -> Operator:
        """Create an operator, or set a new password for an existing one (see ``set_password``)."""
        if not NAME_PATTERN.match(name):
            raise StoreError("letters, digits and _.@- only, 1 to 100 of them", field="name")
        _check_password(password)
        password_hash = HASHER.hash(password)
        with self.database.session() as session, session.begin():
            row = session.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                row = UserRow(name=name, password_hash=password_hash)
                session.add(row)
            else:
                row.password_hash = password_hash
                _end_everything(session, row.id)
            session.flush()
            return Operator(row.id, row.name)

    def set_password(self, name: str, password: str) -> Operator:
        """A new password for an existing operator; every session and token they had ends."""
        _check_password(password)
        password_hash = HASHER.hash(password)
        with self.database.session() as session, session.begin():
            row = _operator_row(session, name)
            row.password_hash = password_hash
            _end_everything(session, row.id)
            return Operator(row.id, row.name)

    def authenticate(self, name: str, password: str) -> Operator | None:
        """The operator if name and password match, else None, in the same time either way.

        Blocking and memory-hard: call it through the web app's bounded pool.
        """
        if len(password) > MAX_PASSWORD:
            password = password[:MAX_PASSWORD]
        with self.database.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.name == name))
        stored = row.password_hash if row is not None else _DUMMY_HASH
        try:
            HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if HASHER.check_needs_rehash(stored):
            self._rehash(row.id, stored, HASHER.hash(password))
        return Operator(row.id, row.name)

    def _rehash(self, user_id: int, old: str, new: str) -> None:
        with self.database.session() as session, session.begin():
            row = session.get(UserRow, user_id)
            # Only if the password has not changed meanwhile.
            if row is not None and row.password_hash == old:
                row.password_hash = new

    def get(self, operator_id: int) -> Operator | None:
        with self.database.session() as session:
            row = session.get(UserRow, operator_id)
            return Operator(row.id, row.name) if row is not None else None

    # Sessions --------------------------------------------------------------

    def open_session(
        self, operator: Operator, source: str | None, now: datetime | None = None
    ) -> str:
        """A new session for a logged-in operator; put the returned secret in the signed cookie."""
        now = now or utcnow()
        secret = secrets.token_urlsafe(32)
        with self.database.session() as session, session.begin():
            # Expired sessions of anyone go now: the table holds live logins only.
            session.execute(delete(SessionRow).where(SessionRow.expires_at <= now))
            live = session.scalar(
                select(func.count())
                .select_from(SessionRow)
                .where(SessionRow.user_id == operator.id)
            )
            if live is not None and live >= MAX_SESSIONS:
                oldest = session.scalars(
                    select(SessionRow.id)
                    .where(SessionRow.user_id == operator.id)
                    .order_by(SessionRow.created_at, SessionRow.id)
                    .limit(live - MAX_SESSIONS + 1)
                ).all()
                session.execute(delete(SessionRow).where(SessionRow.id.in_(oldest)))
            session.add(
                SessionRow(
                    user_id=operator.id,
                    secret_sha256=_digest(secret),
                    source=source[:64] if source else None,
                    created_at=now,
                    last_used_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
        return secret

    def check_session(self, secret: str, now: datetime | None = None) -> Operator | None:
        """The operator whose live session this is, or None (unknown, revoked or expired)."""
        now = now or utcnow()
        with self.database.session() as session:
            row = session.scalar(
                select(SessionRow).where(SessionRow.secret_sha256 == _digest(secret))
            )
            if row is None or row.expires_at <= now:
                return None
            operator = Operator(row.user.id, row.user.name)
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                row.last_used_at = now
                session.commit()
            return operator

    def session_id(self, secret: str) -> str | None:
        """The ``s<n>`` id ``credentials`` lists for this session secret, or None."""
        with self.database.session() as session:
            number = session.scalar(
                select(SessionRow.id).where(SessionRow.secret_sha256 == _digest(secret))
            )
        return None if number is None else f"s{number}"

    def end_session(self, secret: str) -> None:
        """Log out: the session's row goes, so its cookie is worthless from now on."""
        with self.database.session() as session, session.begin():
            session.execute(delete(SessionRow).where(SessionRow.secret_sha256 == _digest(secret)))

    # Tokens ----------------------------------------------------------------

    def issue_token(
        self,
        name: str,
        label: str = "api",
        expires_in: timedelta | None = None,
        now: datetime | None = None,
    ) -> str:
        """A new bearer token for ``name``; shown once, only its digest is kept."""
        now = now or utcnow()
        if expires_in is not None and expires_in <= timedelta(0):
            raise StoreError("a token must last a positive time", field="expires")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.database.session() as session, session.begin():
            row = session.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                raise Conflict(f"there is no operator {name!r}", field="name")
            session.add(
                ApiTokenRow(
                    user_id=row.id,
                    token_sha256=_digest(token),
                    label=label[:100],
                    created_at=now,
                    expires_at=now + expires_in if expires_in is not None else None,
                )
            )
        return token

    def check_token(self, token: str, now: datetime | None = None) -> Operator | None:
        """The operator a live token belongs to, or None (unknown, revoked or expired)."""
        now = now or utcnow()
        with self.database.session() as session:
            row = session.scalar(
                select(ApiTokenRow).where(ApiTokenRow.token_sha256 == _digest(token))
            )
            if row is None or (row.expires_at is not None and row.expires_at <= now):
                return None
            operator = Operator(row.user.id, row.user.name)
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                row.last_used_at = now
                session.commit()
            return operator

    # Listing and revoking --------------------------------------------------

    def credentials(self, name: str, now: datetime | None = None) -> list[Credential]:
        """The operator's live sessions and all their tokens (expired ones too), oldest first."""
        now = now or utcnow()
        with self.database.session() as session:
            user = _operator_row(session, name)
            sessions = session.scalars(
                select(SessionRow)
                .where(SessionRow.user_id == user.id, SessionRow.expires_at > now)
                .order_by(SessionRow.id)
            ).all()
            tokens = session.scalars(
                select(ApiTokenRow).where(ApiTokenRow.user_id == user.id).order_by(ApiTokenRow.id)
            ).all()
            found = [
                Credential(
                    f"s{s.id}",
                    "session",
                    s.source or "",
                    s.created_at,
                    s.last_used_at,
                    s.expires_at,
                )
                for s in sessions
            ] + [
                Credential(f"t{t.id}", "token", t.label, t.created_at, t.last_used_at, t.expires_at)
                for t in tokens
            ]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    def revoke(self, name: str, credential_id: str) -> None:
        """End one session (``s<n>``) or token (``t<n>``) of ``name``; 404 if it is not theirs."""
        kind, number = credential_id[:1], credential_id[1:]
        table: type[SessionRow] | type[ApiTokenRow]
        if kind == "s":
            table = SessionRow
        elif kind == "t":
            table = ApiTokenRow
        else:
            table = ApiTokenRow
            number = ""
        if not (number.isascii() and number.isdigit() and len(number) <= 18):
            raise StoreError(
                f"{credential_id!r} is not an id such as s3 or t7 (see `user tokens`)", field="id"
            )
        with self.database.session() as session, session.begin():
            user = _operator_row(session, name)
            gone = session.execute(
                delete(table).where(table.id == int(number), table.user_id == user.id)
            )
            if gone.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"{name} has no session or token {credential_id}", field="id")

    def revoke_all(self, name: str) -> None:
        """End every session and token of ``name``."""
        with self.database.session() as session, session.begin():
            _end_everything(session, _operator_row(session, name).id)


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise StoreError(f"at least {MIN_PASSWORD} characters", field="password")
