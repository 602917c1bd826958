"""Operators and tokens on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from callbridge.store.db import Database
from callbridge.store.events import StoreError
from callbridge.store.users import UserStore


def test_password_is_hashed_and_checked(database: Database) -> None:
    users = UserStore(database)
    operator = users.add("dana", "correct horse battery")
    assert users.authenticate("dana", "correct horse battery") == operator
    assert users.authenticate("dana", "wrong password!!") is None
    assert users.authenticate("nobody", "correct horse battery") is None
    from callbridge.store.models import UserRow

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
