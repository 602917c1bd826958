"""Operators and tokens on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from callbridge.store.db import Database
from callbridge.store.events import StoreError
from callbridge.store.models import ApiTokenRow, UserRow
from callbridge.store.users import MAX_SESSIONS, SESSION_LIFETIME, UserStore


def test_password_is_hashed_and_checked(database: Database) -> None:
    users = UserStore(database)
    operator = users.add("dana", "correct horse battery")
    assert users.authenticate("dana", "correct horse battery") == operator
    assert users.authenticate("dana", "wrong password!!") is None
    assert users.authenticate("nobody", "correct horse battery") is None
    with database.session() as session:
        row = session.get(UserRow, operator.id)
        assert row is not None
        assert "correct horse" not in row.password_hash
        assert row.password_hash.startswith("$argon2")


def test_add_again_changes_the_password(database: Database) -> None:
    users = UserStore(database)
    users.add("dana", "first password 1")
    users.add("dana", "second password 2")
    assert users.authenticate("dana", "first password 1") is None
    assert users.authenticate("dana", "second password 2") is not None


@pytest.mark.parametrize(
    ("name", "password", "field"),
    [
        ("", "long enough pw", "name"),
        ("a b", "long enough pw", "name"),
        ("dana", "short", "password"),
    ],
)
def test_bad_accounts_are_refused(database: Database, name: str, password: str, field: str) -> None:
    with pytest.raises(StoreError) as refused:
        UserStore(database).add(name, password)
    assert refused.value.field == field


def test_tokens(database: Database) -> None:
    users = UserStore(database)
    operator = users.add("dana", "correct horse battery")
    token = users.issue_token("dana")
    assert users.check_token(token) == operator
    assert users.check_token(token + "x") is None
    with pytest.raises(StoreError):
        users.issue_token("nobody")


T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_tokens_expire(database: Database) -> None:
    users = UserStore(database)
    operator = users.add("dana", "correct horse battery")
    token = users.issue_token("dana", "ci", expires_in=timedelta(days=30), now=T0)
    assert users.check_token(token, now=T0 + timedelta(days=29)) == operator
    assert users.check_token(token, now=T0 + timedelta(days=30)) is None
    with pytest.raises(StoreError) as refused:
        users.issue_token("dana", expires_in=timedelta(0), now=T0)
    assert refused.value.field == "expires"


def test_tokens_are_stored_hashed_and_listed_with_last_use(database: Database) -> None:
    users = UserStore(database)
    users.add("dana", "correct horse battery")
    token = users.issue_token("dana", "ci", expires_in=timedelta(days=1), now=T0)
    with database.session() as session:
        digests = session.scalars(select(ApiTokenRow.token_sha256)).all()
    assert token not in digests and len(digests[0]) == 64
    users.check_token(token, now=T0 + timedelta(hours=1))
    (listed,) = users.credentials("dana", now=T0 + timedelta(hours=2))
    assert listed.kind == "token" and listed.id.startswith("t") and listed.label == "ci"
    assert listed.created_at == T0
    assert listed.last_used_at == T0 + timedelta(hours=1)
    assert listed.expires_at == T0 + timedelta(days=1)


def test_sessions_open_check_end_and_expire(database: Database) -> None:
    users = UserStore(database)
    operator = users.add("dana", "correct horse battery")
    secret = users.open_session(operator, "127.0.0.1", now=T0)
    assert users.check_session(secret, now=T0 + timedelta(hours=1)) == operator
    assert users.check_session(secret, now=T0 + SESSION_LIFETIME) is None
    assert users.check_session(secret + "x", now=T0) is None
    (listed,) = users.credentials("dana", now=T0 + timedelta(hours=1))
    assert listed.kind == "session" and listed.label == "127.0.0.1"
    assert listed.last_used_at == T0 + timedelta(hours=1)
    assert users.credentials("dana", now=T0 + SESSION_LIFETIME) == []
    users.end_session(secret)
    assert users.check_session(secret, now=T0) is None


def test_sessions_per_operator_are_bounded(database: Database) -> None:
    users = UserStore(database)
    operator = users.add("dana", "correct horse battery")
    first = users.open_session(operator, None, now=T0)
    for n in range(MAX_SESSIONS):
        users.open_session(operator, None, now=T0 + timedelta(seconds=n + 1))
    assert len(users.credentials("dana", now=T0)) == MAX_SESSIONS
    assert users.check_session(first, now=T0) is None


def test_revoke_one_or_all(database: Database) -> None:
    users = UserStore(database)
    dana = users.add("dana", "correct horse battery")
    sam = users.add("sam", "another long password")
    session = users.open_session(dana, "127.0.0.1")
    token = users.issue_token("dana")
    sams = users.issue_token("sam")
    ids = {c.kind: c.id for c in users.credentials("dana")}
    sams_id = users.credentials("sam")[0].id
    with pytest.raises(StoreError) as not_theirs:
        users.revoke("dana", sams_id)
    assert not_theirs.value.status == 404
    for bad in ("x1", "t", "t-1", "s²"):
        with pytest.raises(StoreError) as malformed:
            users.revoke("dana", bad)
        assert malformed.value.field == "id"
    users.revoke("dana", ids["token"])
    assert users.check_token(token) is None
    assert users.check_session(session) == dana
    users.revoke("dana", ids["session"])
    assert users.check_session(session) is None
    users.issue_token("dana")
    users.open_session(dana, None)
    users.revoke_all("dana")
    assert users.credentials("dana") == []
    assert users.check_token(sams) == sam


def test_a_new_password_ends_every_session_and_token(database: Database) -> None:
    users = UserStore(database)
    dana = users.add("dana", "correct horse battery")
    session = users.open_session(dana, None)
    token = users.issue_token("dana")
    users.set_password("dana", "a brand new password")
    assert users.check_session(session) is None and users.check_token(token) is None
    session = users.open_session(dana, None)
    users.add("dana", "yet another password")
    assert users.check_session(session) is None
    with pytest.raises(StoreError) as missing:
        users.set_password("nobody", "a brand new password")
    assert missing.value.status == 404


def test_an_old_hash_is_remade_at_login(database: Database) -> None:
    users = UserStore(database)
    operator = users.add("dana", "correct horse battery")
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)
    with database.session() as session, session.begin():
        row = session.get(UserRow, operator.id)
        assert row is not None
        row.password_hash = old.hash("correct horse battery")
    assert users.authenticate("dana", "correct horse battery") == operator
    with database.session() as session:
        remade = session.get(UserRow, operator.id)
        assert remade is not None
        assert "m=19456,t=2,p=1" in remade.password_hash
    assert users.authenticate("dana", "correct horse battery") == operator
