"""The schema's head as the database module reads it, against Alembic's own view."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from callbridge.store.db import MIGRATIONS, Database, schema_head


def test_the_head_read_from_file_names_is_alembics() -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    script = ScriptDirectory.from_config(config)
    assert schema_head() == tuple(script.get_heads())
    # One line of revisions, each file named by its own revision.
    for revision in script.walk_revisions():
        assert Path(revision.path).name.startswith(f"{revision.revision}_")


def test_a_new_database_is_brought_to_the_head_once(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'cb.sqlite3'}")
    done = database.upgrade()
    assert done is not None and done.before == () and done.after == schema_head()
    assert database.upgrade() is None
    database.dispose()
