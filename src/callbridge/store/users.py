"""Operator accounts and API tokens.

Passwords are hashed with argon2id. A login for a name that does not exist
still verifies against a dummy hash, so the answer takes as long and reads
the same whether the name exists or not.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from callbridge.store.db import Database
from callbridge.store.events import Conflict, StoreError
from callbridge.store.models import ApiTokenRow, UserRow

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Operator:
    id: int
    name: str


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    """Add operators, check their passwords, issue and check bearer tokens."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, name: str, password: str) -> Operator:
        """Create an operator, or set a new password for an existing one."""
        if not NAME_PATTERN.match(name):
            raise StoreError("letters, digits and _.@- only, 1 to 100 of them", field="name")
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise StoreError(f"at least {MIN_PASSWORD} characters", field="password")
        with self.database.session() as session, session.begin():
            row = session.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                row = UserRow(name=name, password_hash=_hasher.hash(password))
                session.add(row)
            else:
                row.password_hash = _hasher.hash(password)
            session.flush()
            return Operator(row.id, row.name)

    def authenticate(self, name: str, password: str) -> Operator | None:
        """The operator if name and password match, else None, in the same time either way."""
        if len(password) > MAX_PASSWORD:
            password = password[:MAX_PASSWORD]
        with self.database.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.name == name))
        stored = row.password_hash if row is not None else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        return Operator(row.id, row.name)

    def get(self, operator_id: int) -> Operator | None:
        with self.database.session() as session:
            row = session.get(UserRow, operator_id)
            return Operator(row.id, row.name) if row is not None else None

    def issue_token(self, name: str, label: str = "api") -> str:
        """A new bearer token for ``name``; shown once, only its digest is kept."""
        token = "cb_" + secrets.token_urlsafe(32)
        with self.database.session() as session, session.begin():
            row = session.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                raise Conflict(f"there is no operator {name!r}", field="name")
            session.add(ApiTokenRow(user_id=row.id, token_sha256=_token_digest(token), label=label))
        return token

    def check_token(self, token: str) -> Operator | None:
        with self.database.session() as session:
            row = session.scalar(
                select(ApiTokenRow).where(ApiTokenRow.token_sha256 == _token_digest(token))
            )
            if row is None:
                return None
            return Operator(row.user.id, row.user.name)
