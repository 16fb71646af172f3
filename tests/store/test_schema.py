"""The migrations are the schema: what Alembic builds equals the SQLAlchemy models, and
databases of the wrong version or kind are refused with a message that says what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from nlx.errors import StoreError
from nlx.store.db import head_revision, open_db, resolve_url, upgrade
from nlx.store.models import VERSION_TABLE, Base


def test_migrated_schema_equals_models(db_path):
    upgrade(resolve_url(str(db_path)))
    engine = open_db(str(db_path))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_version_table_does_not_clash_with_optuna(db_path):
    engine = open_db(str(db_path), create=True)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert VERSION_TABLE in tables and "alembic_version" not in tables


def test_sqlite_pragmas(db_path):
    engine = open_db(str(db_path), create=True)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()


def test_read_of_missing_database_creates_nothing(db_path):
    with pytest.raises(StoreError, match="no database at"):
        open_db(str(db_path))
    assert not db_path.exists()


def test_newer_database_is_refused(db_path):
    open_db(str(db_path), create=True).dispose()
    with sqlite3.connect(db_path) as connection:
        connection.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff9999'")
    with pytest.raises(StoreError, match="newer than this nlx"):
        open_db(str(db_path))


def test_older_database_asks_for_upgrade(db_path, monkeypatch):
    open_db(str(db_path), create=True).dispose()
    # Pretend the code has moved on by one revision: the database is then behind the head.
    monkeypatch.setattr("nlx.store.db.head_revision", lambda: "9999_future")
    with pytest.raises(StoreError, match="nlx db upgrade"):
        open_db(str(db_path))


def test_foreign_files_are_refused(tmp_path):
    text_file = tmp_path / "notes.db"
    text_file.write_text("this is not a database " * 100)
    with pytest.raises(StoreError, match="cannot use as an nlx database"):
        open_db(str(text_file))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="not an nlx database"):
        open_db(str(other), create=True)


def test_upgrade_is_idempotent(db_path):
    url = resolve_url(str(db_path))
    assert upgrade(url) == (None, head_revision())
    assert upgrade(url) == (head_revision(), head_revision())


def test_upgrade_refuses_a_newer_database(db_path):
    open_db(str(db_path), create=True).dispose()
    with sqlite3.connect(db_path) as connection:
        connection.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff9999'")
    with pytest.raises(StoreError, match="newer than this nlx"):
        upgrade(resolve_url(str(db_path)))


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("schema_*.db")), ids=lambda p: p.stem)
def test_frozen_databases_of_every_schema_upgrade_keeping_every_row(fixture, tmp_path, cli):
    db = tmp_path / fixture.name
    db.write_bytes(fixture.read_bytes())
    with sqlite3.connect(db) as connection:
        before = {table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                  for table in ("runs", "epoch_metrics", "checkpoints", "transition_matrices", "run_labels")}
    assert before["runs"] > 0 and before["epoch_metrics"] > 0
    assert cli("db", "upgrade", "--db", db).exit_code == 0
    with sqlite3.connect(db) as connection:
        after = {table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in before}
        assert connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()[0] == head_revision()
    assert after == before
    assert cli("ls", "--db", db).exit_code == 0
    assert cli("compare", "--db", db, "--format", "csv").exit_code == 0
